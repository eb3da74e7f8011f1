#!/usr/bin/env python3
"""HITL.sh REST API emulator: the daemon's sparring partner in tests, demo and
benchmarks. Strict where docs/HITL-API.md is strict (loops + requests API,
workflows trigger, envelope, validation wordings, ranges, unknown fields,
rate limiting, lifecycle, callbacks), with switchable drifts for what the real
service may show (alternative status words and shapes, inactive key as 401 or
403, a spent monthly quota, retired loop endpoints), plus private control
endpoints under /_emu/ (keys, reviewers, workflows, clock, faults, drift,
callbacks, stats).

Python 3.11 standard library only. See tests/emulator/README.md for the CLI and
every control endpoint.
"""

import argparse
import calendar
import decimal
import email.utils
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0"
MAX_BODY = 1024 * 1024
MAX_CALL_LOG = 50000
MAX_DELIVERY_LOG = 2000
TICK_S = 0.1
SIMILAR_WINDOW_S = 300

HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
HEXCOLOR = re.compile(r"^#[0-9a-fA-F]{6}$")

PROCESSING_TYPES = ["time-sensitive", "deferred"]
CONTENT_TYPES = ["markdown", "image", "file", "video", "audio"]
# The fields each content type needs; none of them is allowed on another type.
CONTENT_FIELDS = {"markdown": [], "image": ["image_url"], "file": ["file_url", "file_type", "file_name"],
                  "video": ["video_url"], "audio": ["audio_url"]}
CONTENT_URL_FIELDS = ["image_url", "file_url", "video_url", "audio_url"]
CREATE_FIELDS = ["processing_type", "type", "priority", "request_text", "image_url", "file_url", "file_type",
                 "file_name", "video_url", "audio_url", "context", "timeout_seconds", "response_type",
                 "response_config", "default_response", "platform", "platform_version", "callback_url"]
PRIORITIES = ["low", "medium", "high", "critical"]
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
PLATFORMS = ["n8n", "zapier", "web_portal", "api", "mobile", "webhook"]
RESPONSE_TYPES = ["text", "single_select", "multi_select", "rating", "number", "boolean", "editable_text"]
STATUSES = ["pending", "claimed", "completed", "timeout", "cancelled"]
SORTS = ["created_at_desc", "created_at_asc", "priority_desc", "status_asc"]
FEEDBACK_CATEGORIES = ["positive", "constructive", "issue"]
FAULT_KINDS = ["500", "503", "429", "reset", "commit_no_reply", "hang", "slow"]
PERMISSIONS = ["loops:read", "loops:write", "requests:read", "requests:write"]

TS_MAX = 86400
DEFERRED_DEFAULT = 2592000      # applies only when a deferred request omits timeout_seconds
TS_MIN = 60
WORKFLOW_ID = re.compile(r"^wf_[A-Za-z0-9_-]{1,64}$")
MAX_TRIGGER_LOG = 100           # trigger bodies kept per workflow
MAX_CREATE_ERRORS = 50

# Drift switches (README "Drift"): what a real server may show beyond the docs.
DRIFT_DEFAULTS = {"status_words": "standard", "status_shape": "nested", "key_inactive": None,
                  "quota_exhausted": False, "loop_endpoints": None}
DRIFT_CHOICES = {"status_words": ("standard", "alt"), "status_shape": ("nested", "flat"),
                 "key_inactive": (None, 401, 403), "quota_exhausted": (False, True),
                 "loop_endpoints": (None, 404, 410, 301)}
CALLBACK_SWITCHES = ("drop", "duplicate", "seed", "retry_408_429")
QUOTA_MSG = "Monthly response limit reached"
MIGRATION_URL = "https://docs.hitl.sh/guides/migration"

# A 1x1 transparent PNG, stands in for the QR code image.
TINY_PNG_B64 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABh6FO1AAAAABJRU5ErkJggg==")


# --------------------------------------------------------------------------
# small helpers

def iso(t):
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(t)))


def mask(key):
    if not key:
        return None
    return "****" + key[-4:]


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def fmt_num(x):
    if isinstance(x, int):
        return str(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def decimals_of(x):
    if isinstance(x, int) or x.is_integer():
        return 0
    exp = decimal.Decimal(repr(x)).normalize().as_tuple().exponent
    return -exp if exp < 0 else 0


def snake(s):
    return re.sub(r"[\W_]+", "_", s.lower()).strip("_")


def is_http_url(s):
    if not isinstance(s, str) or not s or len(s) > 2048 or any(c.isspace() for c in s):
        return False
    try:
        u = urllib.parse.urlsplit(s)
    except ValueError:
        return False
    return u.scheme in ("http", "https") and bool(u.hostname)


def is_loopback_host(host):
    if not host:
        return False
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def reject_constant(name):
    raise ValueError("invalid JSON constant " + name)


def parse_json(raw):
    return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def present(d, k):
    return isinstance(d, dict) and d.get(k) is not None


class ApiError(Exception):
    def __init__(self, status, msg, data=None, headers=None):
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.data = data
        self.headers = headers or []


class CtlError(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status
        self.msg = msg


class AnswerError(Exception):
    pass


def invalid_body(field):
    return ApiError(400, "Invalid request body", {"field": field, "issue": "Field is required"})


def validation(msg):
    return ApiError(400, "Validation failed", msg)


def cfg_error(msg):
    return ApiError(400, "Invalid response configuration", msg)


def enum_check(body, field, allowed):
    v = body.get(field)
    if not isinstance(v, str) or v not in allowed:
        raise validation("%s must be one of: %s" % (field, ", ".join(allowed)))
    return v


class Reply:
    def __init__(self, status, payload=None, headers=None, action=None, seconds=0.0):
        self.status = status
        self.body = b"" if payload is None else dumps(payload)
        self.headers = headers or []
        self.action = action          # None | reset | hang | slow
        self.seconds = seconds


def envelope(error, msg, data=None):
    return {"error": error, "msg": msg, "data": data}


# --------------------------------------------------------------------------
# response types (docs/HITL-API.md §3)

def check_required_flag(cfg):
    if present(cfg, "required") and not isinstance(cfg["required"], bool):
        raise cfg_error("required must be a boolean")
    return bool(cfg.get("required") or False)


def check_opt_string(cfg, name):
    if present(cfg, name) and not isinstance(cfg[name], str):
        raise cfg_error("%s must be a string" % name)


def validate_options(cfg):
    opts = cfg.get("options")
    if not isinstance(opts, list) or not opts:
        raise cfg_error("options array required for select response type")
    if len(opts) > 20:
        raise cfg_error("options must contain between 1 and 20 items")
    out, seen = [], set()
    for i, o in enumerate(opts):
        if isinstance(o, str):
            if not 1 <= len(o) <= 100:
                raise cfg_error("options[%d] must be a non-empty string of at most 100 characters" % i)
            norm = {"value": o, "label": o}
        elif isinstance(o, dict):
            v, lab = o.get("value"), o.get("label")
            if not isinstance(v, str) or not 1 <= len(v) <= 100:
                raise cfg_error("options[%d].value must be a non-empty string of at most 100 characters" % i)
            if not isinstance(lab, str) or not 1 <= len(lab) <= 200:
                raise cfg_error("options[%d].label must be a non-empty string of at most 200 characters" % i)
            if present(o, "description") and not isinstance(o["description"], str):
                raise cfg_error("options[%d].description must be a string" % i)
            if present(o, "color") and not (isinstance(o["color"], str) and HEXCOLOR.match(o["color"])):
                raise cfg_error("options[%d].color must be a hex color #rrggbb" % i)
            norm = dict(o)
        else:
            raise cfg_error("options[%d] must be a string or an object with value and label" % i)
        if norm["value"] in seen:
            raise cfg_error("duplicate option value: %s" % norm["value"])
        seen.add(norm["value"])
        out.append(norm)
    return out


def pick(cfg, names):
    for n in names:
        if present(cfg, n):
            return n, cfg[n]
    return names[0], None


def config_spec(rtype, cfg):
    """Validates response_config for rtype; returns (stored_config, spec) where
    spec holds the effective parameters used to check answers. Raises ApiError
    (400 Invalid response configuration) on the first problem."""
    if not isinstance(cfg, dict):
        raise cfg_error("response_config must be an object")
    stored = dict(cfg)
    spec = {"required": check_required_flag(cfg)}
    if rtype == "text":
        check_opt_string(cfg, "placeholder")
        check_opt_string(cfg, "guidelines")
        mx = cfg.get("max_length", 1000)
        if mx is None:
            mx = 1000
        if not is_int(mx) or not 1 <= mx <= 5000:
            raise cfg_error("max_length must be an integer between 1 and 5000")
        mn = cfg.get("min_length", 0)
        if mn is None:
            mn = 0
        if not is_int(mn) or mn < 0:
            raise cfg_error("min_length must be an integer >= 0")
        if mn > mx:
            raise cfg_error("min_length must be <= max_length")
        spec.update(min_length=mn, max_length=mx)
    elif rtype in ("single_select", "multi_select"):
        opts = validate_options(cfg)
        stored["options"] = opts
        spec["options"] = opts
        if rtype == "multi_select":
            mn = cfg.get("min_selections", 0)
            if mn is None:
                mn = 0
            if not is_int(mn) or mn < 0:
                raise cfg_error("min_selections must be an integer >= 0")
            mx = cfg.get("max_selections", len(opts))
            if mx is None:
                mx = len(opts)
            if not is_int(mx) or mx < 0:
                raise cfg_error("max_selections must be an integer >= 0")
            if mn > len(opts):
                raise cfg_error("min_selections must be <= %d (the number of options)" % len(opts))
            if mx > len(opts):
                raise cfg_error("max_selections must be <= %d (the number of options)" % len(opts))
            if mx < mn:
                raise cfg_error("max_selections must be >= min_selections")
            spec.update(min_selections=mn, max_selections=mx)
    elif rtype == "rating":
        nmax, smax = pick(cfg, ["scale_max", "max", "max_value"])
        if smax is None:
            raise cfg_error("scale_max is required")
        if not is_num(smax):
            raise cfg_error("%s must be a number" % nmax)
        if smax > 100:
            raise cfg_error("%s must be <= 100" % nmax)
        nmin, smin = pick(cfg, ["scale_min", "min", "min_value"])
        if smin is None:
            smin = 1
        if not is_num(smin):
            raise cfg_error("%s must be a number" % nmin)
        if not smax > smin:
            raise cfg_error("%s must be > %s" % (nmax, nmin))
        nstep, step = pick(cfg, ["scale_step", "step"])
        if step is None:
            step = 1
        if not is_num(step) or step <= 0:
            raise cfg_error("%s must be a number > 0" % nstep)
        labels = cfg.get("labels")
        if labels is not None:
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise cfg_error("labels must be an object of strings")
        spec.update(scale_min=smin, scale_max=smax, scale_step=step, labels=labels or {})
    elif rtype == "number":
        mx = cfg.get("max_value")
        if mx is None:
            raise cfg_error("max_value is required")
        if not is_num(mx):
            raise cfg_error("max_value must be a number")
        mn = cfg.get("min_value", 0)
        if mn is None:
            mn = 0
        if not is_num(mn):
            raise cfg_error("min_value must be a number")
        if not mx > mn:
            raise cfg_error("max_value must be > min_value")
        dp = cfg.get("decimal_places", 2)
        if dp is None:
            dp = 2
        if not is_int(dp) or not 0 <= dp <= 10:
            raise cfg_error("decimal_places must be an integer between 0 and 10")
        neg = cfg.get("allow_negative", False)
        if neg is None:
            neg = False
        if not isinstance(neg, bool):
            raise cfg_error("allow_negative must be a boolean")
        check_opt_string(cfg, "prefix")
        check_opt_string(cfg, "suffix")
        check_opt_string(cfg, "placeholder")
        spec.update(min_value=mn, max_value=mx, decimal_places=dp, allow_negative=neg,
                    prefix=cfg.get("prefix") or "", suffix=cfg.get("suffix") or "")
    elif rtype == "editable_text":
        mx = cfg.get("max_length", 5000)
        if mx is None:
            mx = 5000
        if not is_int(mx) or not 1 <= mx <= 5000:
            raise cfg_error("max_length must be an integer between 1 and 5000")
        draft = cfg.get("draft_text")
        if not isinstance(draft, str) or not draft:
            raise cfg_error("draft_text is required for editable_text")
        if len(draft) > mx:
            raise cfg_error("draft_text must be at most max_length characters")
        spec.update(min_length=0, max_length=mx, draft_text=draft)
    elif rtype == "boolean":
        for name, dflt in (("true_label", "Yes"), ("false_label", "No")):
            v = cfg.get(name)
            if v is not None and not (isinstance(v, str) and 1 <= len(v) <= 100):
                raise cfg_error("%s must be a non-empty string of at most 100 characters" % name)
            spec[name] = v if v is not None else dflt
        for name in ("true_color", "false_color"):
            if present(cfg, name) and not (isinstance(cfg[name], str) and HEXCOLOR.match(cfg[name])):
                raise cfg_error("%s must be a hex color #rrggbb" % name)
    else:
        raise cfg_error("unknown response_type")
    return stored, spec


def match_option(options, s):
    for o in options:
        if o["value"] == s:
            return o
    for o in options:
        if o["label"] == s:
            return o
    low = s.casefold()
    for o in options:
        if o["label"].casefold() == low:
            return o
    for o in options:
        if snake(o["label"]) == s:
            return o
    return None


def parse_answer(rtype, spec, value, subject, structured_ok):
    """Checks one answer (or default_response) against spec; returns its
    canonical form (text: str, single: value, multi: [values], rating/number:
    number, boolean: bool). Raises AnswerError('<subject> must ...')."""
    def need(key):
        if key not in value:
            raise AnswerError("%s must contain %s" % (subject, key))
        return value[key]

    if rtype == "editable_text":
        if structured_ok and isinstance(value, dict):
            edited = value.get("was_edited")
            if edited is not None and not isinstance(edited, bool):
                raise AnswerError("%s.was_edited must be a boolean" % subject)
            value = need("revised_text")
        if not isinstance(value, str):
            raise AnswerError("%s must be a string" % subject)
        if len(value) > spec["max_length"]:
            raise AnswerError("%s must be at most %d characters" % (subject, spec["max_length"]))
        return value
    if rtype == "text":
        if not isinstance(value, str):
            raise AnswerError("%s must be a string" % subject)
        n = len(value.strip())
        if spec["required"] and n == 0:
            raise AnswerError("%s must not be empty" % subject)
        if n < spec["min_length"]:
            raise AnswerError("%s must be at least %d characters" % (subject, spec["min_length"]))
        if n > spec["max_length"]:
            raise AnswerError("%s must be at most %d characters" % (subject, spec["max_length"]))
        return value
    if rtype == "single_select":
        if structured_ok and isinstance(value, dict):
            value = need("selected_value")
        o = match_option(spec["options"], value) if isinstance(value, str) else None
        if o is None:
            raise AnswerError("%s must be one of the option values" % subject)
        return o["value"]
    if rtype == "multi_select":
        if structured_ok and isinstance(value, dict):
            value = need("selected_values")
        if not isinstance(value, list):
            raise AnswerError("%s must be an array of option values" % subject)
        vals = []
        for item in value:
            o = match_option(spec["options"], item) if isinstance(item, str) else None
            if o is None:
                raise AnswerError("%s must contain only option values" % subject)
            if o["value"] in vals:
                raise AnswerError("%s must not contain duplicate selections" % subject)
            vals.append(o["value"])
        lo = max(spec["min_selections"], 1 if spec["required"] else 0)
        if len(vals) < lo:
            raise AnswerError("%s must contain at least %d selections" % (subject, lo))
        if len(vals) > spec["max_selections"]:
            raise AnswerError("%s must contain at most %d selections" % (subject, spec["max_selections"]))
        return vals
    if rtype == "rating":
        if structured_ok and isinstance(value, dict):
            value = need("rating")
        if not is_num(value):
            raise AnswerError("%s must be a number" % subject)
        lo, hi, step = spec["scale_min"], spec["scale_max"], spec["scale_step"]
        if value < lo or value > hi:
            raise AnswerError("%s must be between %s and %s" % (subject, fmt_num(lo), fmt_num(hi)))
        k = (value - lo) / step
        if abs(k - round(k)) > 1e-9:
            raise AnswerError("%s must be on a step of %s from %s" % (subject, fmt_num(step), fmt_num(lo)))
        return value
    if rtype == "number":
        if structured_ok and isinstance(value, dict):
            value = need("number")
        if not is_num(value):
            raise AnswerError("%s must be a number" % subject)
        if value < 0 and not spec["allow_negative"]:
            raise AnswerError("%s must not be negative" % subject)
        if value < spec["min_value"]:
            raise AnswerError("%s must be >= %s" % (subject, fmt_num(spec["min_value"])))
        if value > spec["max_value"]:
            raise AnswerError("%s must be <= %s" % (subject, fmt_num(spec["max_value"])))
        if decimals_of(value) > spec["decimal_places"]:
            raise AnswerError("%s must have at most %d decimal places" % (subject, spec["decimal_places"]))
        return value
    if rtype == "boolean":
        if structured_ok and isinstance(value, dict):
            value = need("boolean")
        if not isinstance(value, bool):
            raise AnswerError("%s must be a boolean" % subject)
        return value
    raise AnswerError("%s: unknown response_type" % subject)


def rating_label(spec, x):
    labels = spec["labels"]
    for k, v in labels.items():
        try:
            if float(k) == x:
                return v
        except ValueError:
            continue
    best = None
    for k, v in labels.items():
        try:
            kv = float(k)
        except ValueError:
            continue
        if kv <= x and (best is None or kv > best[0]):
            best = (kv, v)
    return best[1] if best else None


def encode_answer(rtype, spec, canon, encoding):
    if rtype == "text":
        return canon
    if rtype == "editable_text":
        return {"revised_text": canon, "was_edited": canon != spec["draft_text"]}
    if rtype == "single_select":
        if encoding == "plain":
            return canon
        o = next(o for o in spec["options"] if o["value"] == canon)
        return {"selected_value": canon, "selected_label": o["label"]}
    if rtype == "multi_select":
        if encoding == "plain":
            return list(canon)
        labels = [next(o for o in spec["options"] if o["value"] == v)["label"] for v in canon]
        return {"selected_values": list(canon), "selected_labels": labels}
    if rtype == "rating":
        if encoding == "plain":
            return canon
        out = {"rating": canon}
        lab = rating_label(spec, canon)
        if lab is not None:
            out["rating_label"] = lab
        return out
    if rtype == "number":
        if encoding == "plain":
            return canon
        return {"number": canon, "formatted_value": spec["prefix"] + fmt_num(canon) + spec["suffix"]}
    if rtype == "boolean":
        if encoding == "plain":
            return canon
        return {"boolean": canon, "boolean_label": spec["true_label"] if canon else spec["false_label"]}
    return canon


def first_answer(rtype, spec):
    """The auto-reviewer's "first" answer (canonical form)."""
    if rtype == "text":
        s = "ok"
        if len(s) < spec["min_length"]:
            s += "k" * (spec["min_length"] - len(s))
        return s[:spec["max_length"]]
    if rtype == "single_select":
        return spec["options"][0]["value"]
    if rtype == "multi_select":
        n = max(spec["min_selections"], 1)
        n = min(n, spec["max_selections"])
        return [o["value"] for o in spec["options"][:n]]
    if rtype == "rating":
        return spec["scale_min"]
    if rtype == "number":
        v = spec["min_value"]
        if v < 0 and not spec["allow_negative"]:
            v = 0
        return v
    if rtype == "boolean":
        return True
    if rtype == "editable_text":
        return spec["draft_text"]
    return None


# --------------------------------------------------------------------------
# state

class Key:
    def __init__(self, key, api_key_id, user_id, limit, status, now):
        self.key = key
        self.id = api_key_id
        self.user_id = user_id
        self.limit = limit
        self.status = status          # active | inactive | revoked
        self.inactive_status = None   # what an inactive key gets: None (401, or the drift's) | 401 | 403
        self.window_start = None
        self.usage = 0
        self.created_at = now
        self.reset_counters()

    def reset_counters(self):
        self.calls_total = 0
        self.over_limit = 0
        self.by_route = {}


class Emulator:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.offset = float(cfg.clock_offset)
        self.rand = os.urandom(5)
        self.counter = random.randrange(1 << 24)
        self.log_lock = threading.Lock()
        self.logf = None
        if cfg.log:
            self.logf = open(cfg.log, "a", buffering=1, encoding="utf-8")
        now = self.now()
        # Ids of the CLI-provisioned objects survive /_emu/reset, so the port
        # file stays true.
        self.prov_user_ids = [self.new_id(now) for _ in cfg.keys]
        self.prov_key_ids = [self.new_id(now) for _ in cfg.keys]
        self.prov_member_ids = [self.new_id(now) for _ in cfg.loop_member]
        self.prov_loop_id = self.new_id(now) if cfg.keys and cfg.loop_member else None
        self.prov_invite = self.new_invite_code(set())
        self.wipe()

    # ---- clock and ids

    def now(self):
        return time.time() + self.offset

    def new_id(self, now=None):
        if now is None:
            now = self.now()
        self.counter = (self.counter + 1) & 0xFFFFFF
        ts = int(max(0, min(now, 0xFFFFFFFF)))
        return (struct.pack(">I", ts) + self.rand + self.counter.to_bytes(3, "big")).hex()

    def new_invite_code(self, used):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        while True:
            code = "".join(random.choice(alphabet) for _ in range(6))
            if code not in used:
                return code

    def log(self, line):
        if self.cfg.quiet and not self.logf:
            return
        with self.log_lock:
            if self.logf:
                self.logf.write(line + "\n")
            elif not self.cfg.quiet:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    # ---- (re)initialisation

    def wipe(self):
        with self.lock:
            self.offset = float(self.cfg.clock_offset)
            self.users = {}
            self.users_by_email = {}
            self.keys = {}
            self.loops = {}
            self.requests = {}
            self.active_ids = set()
            self.invite_codes = set()
            self.faults = []
            self.fault_seq = 0
            self.seq = 0
            self.email_seq = 0
            self.autoreview = {"enabled": False}
            self.drift = dict(self.cfg.drift)
            self.cb_control = dict(self.cfg.callbacks)
            self.cb_rng = random.Random(self.cb_control["seed"])
            self.workflows = {}
            if self.cfg.auto_review is not None:
                self.autoreview = {"enabled": True, "delay_s": float(self.cfg.auto_review), "jitter_s": 0.0,
                                   "rules": [], "default": "first", "enabled_at": None}
            self.reset_stats()
            now = self.now()
            self.provisioned = {"keys": {}, "default_loop_id": None}
            for i, k in enumerate(self.cfg.keys):
                u = self.add_user("owner%d@example.com" % (i + 1), self.prov_user_ids[i], now)
                self.keys[k] = Key(k, self.prov_key_ids[i], u["id"], self.cfg.limit, "active", now)
                self.provisioned["keys"][k] = u["id"]
            if self.prov_loop_id:
                owner = self.keys[self.cfg.keys[0]].user_id
                loop = self.create_loop(owner, "default", "inbox", "Default loop (emulator)", now,
                                        loop_id=self.prov_loop_id, code=self.prov_invite)
                for j, em in enumerate(self.cfg.loop_member):
                    u = self.users_by_email.get(em.lower()) or self.add_user(em, self.prov_member_ids[j], now)
                    self.set_member(loop, u["id"], "active", now)
                self.provisioned["default_loop_id"] = loop["id"]

    def reset_stats(self):
        self.calls = []
        self.calls_dropped = 0
        self.calls_total = 0
        self.over_limit_attempts = 0
        self.creates = 0
        self.create_errors = []
        self.triggers = 0
        self.faults_injected = 0
        self.auto_reviewed = 0
        self.auto_review_skipped = 0
        self.cb = {"sent": 0, "failed": 0, "skipped_non_loopback": 0, "attempts": 0, "delivered": 0, "dropped": 0,
                   "duplicated": 0, "retried": 0, "deliveries": []}
        for k in getattr(self, "keys", {}).values():
            k.reset_counters()
        for wf in getattr(self, "workflows", {}).values():
            wf["triggers"] = 0
            wf["executions"] = []

    # ---- users, loops

    def add_user(self, email_addr, user_id, now):
        if email_addr is None:
            while True:
                self.email_seq += 1
                email_addr = "user%d@example.com" % self.email_seq
                if email_addr not in self.users_by_email:
                    break
        u = {"id": (user_id or self.new_id(now)).lower(), "email": email_addr,
             "name": email_addr.split("@")[0], "last_active": None}
        self.users[u["id"]] = u
        self.users_by_email[email_addr.lower()] = u
        return u

    def user_for_email(self, email_addr, now):
        return self.users_by_email.get(email_addr.lower()) or self.add_user(email_addr, None, now)

    def create_loop(self, creator_id, name, icon, description, now, loop_id=None, code=None):
        code = code or self.new_invite_code(self.invite_codes)
        self.invite_codes.add(code)
        loop = {"id": loop_id or self.new_id(now), "name": name, "icon": icon,
                "description": description if description is not None else "",
                "creator_id": creator_id, "members": {}, "invite_code": code,
                "created_at": now, "updated_at": now, "deleted": False}
        loop["members"][creator_id] = {"status": "active", "joined_at": now, "invited_at": now}
        self.loops[loop["id"]] = loop
        return loop

    def set_member(self, loop, user_id, status, now):
        m = loop["members"].get(user_id)
        if m is None:
            m = {"status": status, "joined_at": now if status == "active" else None, "invited_at": now}
            loop["members"][user_id] = m
        elif m["status"] != status:
            m["status"] = status
            m["joined_at"] = now if status == "active" else None
        loop["updated_at"] = now
        return m

    def member_obj(self, loop, uid, full=False):
        m = loop["members"][uid]
        u = self.users[uid]
        out = {"user_id": uid, "email": u["email"], "status": m["status"], "joined_at": iso(m["joined_at"])}
        if full:
            out["role"] = "admin" if uid == loop["creator_id"] else "member"
            la = u["last_active"] or m["joined_at"]
            out["last_active"] = iso(la) if m["status"] == "active" else None
        return out

    def loop_obj(self, loop):
        members = [self.member_obj(loop, uid) for uid in loop["members"]]
        pending = sum(1 for m in loop["members"].values() if m["status"] == "pending")
        return {"id": loop["id"], "name": loop["name"], "description": loop["description"],
                "icon": loop["icon"], "creator_id": loop["creator_id"], "members": members,
                "member_count": len(members), "pending_count": pending,
                "created_at": iso(loop["created_at"]), "updated_at": iso(loop["updated_at"])}

    def active_members(self, loop):
        return [uid for uid, m in loop["members"].items() if m["status"] == "active"]

    def default_reviewer(self, loop):
        act = self.active_members(loop)
        for uid in act:
            if uid != loop["creator_id"]:
                return uid
        return loop["creator_id"]

    # ---- requests

    def req_spec(self, r):
        return config_spec(r["response_type"], r["response_config"])[1]

    def user_brief(self, uid):
        if uid is None:
            return None
        u = self.users.get(uid)
        if u is None:
            return {"user_id": uid, "name": None, "email": None}
        return {"user_id": uid, "name": u["name"], "email": u["email"]}

    def shown_status(self, r):
        """The status word the API shows: the documented one, or under the
        "alt" drift the alternatives vendor material uses."""
        st = r["status"]
        if r.get("status_override") is not None:
            return r["status_override"]
        if self.drift["status_words"] == "alt":
            if st == "timeout":
                return "timed_out"
            if st == "completed":
                return "answered" if r["seq"] % 2 else "resolved"
        return st

    def req_full(self, r):
        return {
            "id": r["id"], "loop_id": r["loop_id"], "creator_id": r["creator_id"],
            "api_key_id": r["api_key_id"], "processing_type": r["processing_type"], "type": r["type"],
            "priority": r["priority"], "request_text": r["request_text"], "image_url": r["image_url"],
            "file_url": r["file_url"], "file_type": r["file_type"], "file_name": r["file_name"],
            "video_url": r["video_url"], "audio_url": r["audio_url"], "context": r["context"], "platform": r["platform"], "platform_version": r["platform_version"],
            "response_type": r["response_type"], "response_config": r["response_config"],
            "default_response": r["default_response"], "timeout_at": iso(r["timeout_at"]),
            "callback_url": r["callback_url"], "broadcasted_to": r["broadcasted_to"],
            "broadcasted_at": iso(r["created_at"]), "status": self.shown_status(r),
            "response_by": r["response_by"], "response_at": iso(r["response_at"]),
            "response_data": r["response_data"], "response_time_seconds": r["response_time_seconds"],
            "response_by_user": self.user_brief(r["response_by"]),
            "completed_at": iso(r["response_at"]),
            "created_at": iso(r["created_at"]), "updated_at": iso(r["updated_at"])}

    def req_summary(self, r):
        return {
            "id": r["id"], "loop_id": r["loop_id"], "processing_type": r["processing_type"],
            "type": r["type"], "priority": r["priority"], "request_text": r["request_text"],
            "response_type": r["response_type"], "status": self.shown_status(r), "response_data": r["response_data"],
            "response_by": r["response_by"], "response_at": iso(r["response_at"]),
            "response_time_seconds": r["response_time_seconds"], "timeout_at": iso(r["timeout_at"]),
            "created_at": iso(r["created_at"]), "updated_at": iso(r["updated_at"])}

    def req_emu(self, r):
        out = self.req_full(r)
        ctx = r["context"]
        out["status"] = r["status"]
        out.update({"api_key": mask(r["key"]), "creator": self.user_brief(r["creator_id"]),
                    "create_body": r["create_body"], "shown_status": self.shown_status(r),
                    "hitld_id": ctx.get("hitld_id") if isinstance(ctx, dict) else None,
                    "claimed_by": r["claimed_by"], "claimed_at": iso(r["claimed_at"]),
                    "feedback": r["feedback"], "deleted": r["deleted"]})
        return out

    def finish(self, r, status, at, user_id=None, response_data=None):
        r["status"] = status
        r["updated_at"] = at
        self.active_ids.discard(r["id"])
        if status == "completed":
            r["response_by"] = user_id
            r["response_at"] = at
            r["response_data"] = response_data
            r["response_time_seconds"] = round(max(0.0, at - r["created_at"]), 3)
            if user_id in self.users:
                self.users[user_id]["last_active"] = at
        if r["callback_url"]:
            self.queue_callback(r)

    def complete_with(self, r, user_id, canon, at):
        spec = self.req_spec(r)
        self.finish(r, "completed", at, user_id, encode_answer(r["response_type"], spec, canon, self.cfg.encoding))

    def advance(self, now):
        """Applies time-driven transitions up to emulator time now: auto-review
        answers and timeouts (whichever comes first for each request)."""
        ar = self.autoreview
        for rid in sorted(self.active_ids, key=lambda i: self.requests[i]["seq"]):
            r = self.requests[rid]
            if ar["enabled"] and r["status"] == "pending" and not r["ar_tried"]:
                if r["ar_jitter"] is None:
                    r["ar_jitter"] = random.uniform(0, ar["jitter_s"]) if ar["jitter_s"] > 0 else 0.0
                due = max(r["created_at"] + ar["delay_s"] + r["ar_jitter"], ar["enabled_at"] or 0)
                if due <= now and due < r["timeout_at"]:
                    r["ar_tried"] = True
                    if self.auto_answer(r, max(due, r["created_at"])):
                        continue
            if now >= r["timeout_at"]:
                self.finish(r, "timeout", r["timeout_at"])

    def auto_answer(self, r, at):
        ar = self.autoreview
        spec = self.req_spec(r)
        loop = self.loops[r["loop_id"]]
        candidates = []
        for rule in ar["rules"]:
            if rule["match"] in r["request_text"]:
                candidates.append(rule["response_data"])
                break
        mode = ar["default"]
        if not candidates:
            if mode == "first":
                candidates.append(("canon", first_answer(r["response_type"], spec)))
                candidates.append(r["default_response"])
            elif mode == "default":
                candidates.append(r["default_response"])
        for c in candidates:
            try:
                if isinstance(c, tuple):
                    canon = parse_answer(r["response_type"], spec, c[1], "response_data", False)
                else:
                    canon = parse_answer(r["response_type"], spec, c, "response_data", True)
            except AnswerError:
                self.auto_review_skipped += 1
                continue
            self.complete_with(r, self.default_reviewer(loop), canon, at)
            self.auto_reviewed += 1
            return True
        return False

    # ---- callbacks (section 6)

    def queue_callback(self, r):
        """Called under self.lock when r is final. The drop and duplicate
        switches draw from their own seeded generator, twice per callback
        whatever the switches say, so that one seed gives one sequence."""
        url = r["callback_url"]
        body = {"event": "request." + r["status"], "request_id": r["id"], "loop_id": r["loop_id"],
                "status": r["status"], "response_data": r["response_data"],
                "response_by": self.user_brief(r["response_by"]), "response_at": iso(r["response_at"]),
                "response_time_seconds": r["response_time_seconds"], "created_at": iso(r["created_at"])}
        drop = self.cb_rng.random() < self.cb_control["drop"]
        dup = self.cb_rng.random() < self.cb_control["duplicate"]
        rec = self.delivery_record(r["id"], body["event"], url)
        if not is_loopback_host(urllib.parse.urlsplit(url).hostname):
            rec["result"] = "skipped_non_loopback"
            self.cb["skipped_non_loopback"] += 1
            return
        if drop:
            rec["result"] = "dropped"
            self.cb["dropped"] += 1
            return
        threading.Thread(target=self.deliver, args=(url, dumps(body), rec, dup), daemon=True).start()

    def delivery_record(self, request_id, event, url, duplicate=False):
        rec = {"request_id": request_id, "event": event, "url": url, "attempts": 0, "result": "in_progress",
               "last_status": None, "last_error": None, "duplicate": duplicate}
        self.cb["deliveries"].append(rec)
        del self.cb["deliveries"][:-MAX_DELIVERY_LOG]
        return rec

    def retry_delays(self):
        """docs/HITL-API.md "Callbacks": up to 3 attempts, 1 s then 2 s
        apart, on the emulator's time scale (the window stands for an hour)."""
        scale = self.cfg.window / 3600.0
        return [1.0 * scale, 2.0 * scale]

    def retryable(self, status):
        if status is None or status >= 500:
            return True       # a network error or timeout, or 5xx
        return self.cb_control["retry_408_429"] and status in (408, 429)

    def deliver(self, url, raw, rec, duplicate):
        if self.deliver_once(url, raw, rec) and duplicate:
            # Delivered, and delivered again: as if the 2xx had been lost
            # on its way back to HITL.sh.
            with self.lock:
                self.cb["duplicated"] += 1
                rec2 = self.delivery_record(rec["request_id"], rec["event"], url, duplicate=True)
            self.deliver_once(url, raw, rec2)

    def deliver_once(self, url, raw, rec):
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect,
                                             urllib.request.HTTPSHandler(context=ctx))
        headers = {"Content-Type": "application/json", "User-Agent": "hitl-emulator/" + VERSION}
        if self.cfg.callback_secret:
            sig = hmac.new(self.cfg.callback_secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-HITL-Signature-256"] = "sha256=" + sig
        delays = self.retry_delays()
        result = "failed"
        for attempt in range(1, len(delays) + 2):
            status, err = None, None
            try:
                req = urllib.request.Request(url, data=raw, headers=headers, method="POST")
                with opener.open(req, timeout=10) as resp:
                    status = resp.status
                    resp.read()
            except urllib.error.HTTPError as e:
                status = e.code
            except Exception as e:  # network error of any kind
                err = str(e)
            with self.lock:
                rec["attempts"] = attempt
                rec["last_status"] = status
                rec["last_error"] = err
                self.cb["attempts"] += 1
                if attempt > 1:
                    self.cb["retried"] += 1
            if status is not None and 200 <= status < 300:
                result = "sent"
                break
            if not self.retryable(status) or attempt > len(delays):
                break
            time.sleep(delays[attempt - 1])
        with self.lock:
            rec["result"] = result
            self.cb[result] += 1
            if result == "sent" and not rec["duplicate"]:
                self.cb["delivered"] += 1
        return result == "sent"

    # ---- faults

    def take_fault(self, method, path):
        for f in self.faults:
            m = f["match"]
            if m.get("method") and m["method"].upper() != method:
                continue
            if m.get("path_prefix") and not path.startswith(m["path_prefix"]):
                continue
            f["remaining"] -= 1
            if f["remaining"] <= 0:
                self.faults.remove(f)
            self.faults_injected += 1
            return f
        return None

    # ---- rate limiting (section 2)

    def roll(self, k, now):
        w = self.cfg.window
        ws = math.floor(now / w) * w
        if k.window_start != ws:
            k.window_start = ws
            k.usage = 0

    def rl_headers(self, k, now):
        w = self.cfg.window
        if k is None:
            limit = self.cfg.limit
            remaining = limit
            reset = math.floor(now / w) * w + w
        else:
            self.roll(k, now)
            limit = k.limit
            remaining = max(0, k.limit - k.usage)
            reset = k.window_start + w
        return [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                ("X-RateLimit-Reset", str(int(reset)))]

    def too_many(self, k, now, usage_count):
        w = self.cfg.window
        self.roll(k, now)
        reset = k.window_start + w
        hdrs = [("X-RateLimit-Limit", str(k.limit)), ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(int(reset))), ("Retry-After", str(max(1, math.ceil(reset - now))))]
        data = {"usage_count": usage_count, "usage_limit": k.limit, "remaining": 0, "reset_at": iso(reset)}
        return hdrs, data

    # ---- the public API entry point

    def api(self, method, raw_path, headers, body, ctype):
        t0 = time.monotonic()
        with self.lock:
            now = self.now()
            self.advance(now)
            path, _, qs = raw_path.partition("?")
            route = match_route(path, "GET" if method == "HEAD" else method, self.cfg.compat_routes)
            token, auth_error = parse_auth(headers.get("Authorization"))
            k = self.keys.get(token) if token else None
            valid = k if k is not None and k.status == "active" else None
            fault = self.take_fault(method, path)
            call = {"t": iso(now), "t_ms": int(now * 1000), "method": method, "path": raw_path,
                    "key": mask(token), "status": None}
            if fault:
                call["fault"] = fault["kind"]
            if valid is not None:
                valid.calls_total += 1
                tmpl = "%s %s" % (method, route[2] if route and route[2] else "(unknown route)")
                valid.by_route[tmpl] = valid.by_route.get(tmpl, 0) + 1
            kind = fault["kind"] if fault else None
            if kind in ("reset", "hang"):
                reply = Reply(0, action=kind, seconds=fault["seconds"])
            elif kind in ("500", "503"):
                msg = "Internal server error" if kind == "500" else "Service temporarily unavailable"
                reply = Reply(int(kind), envelope(True, msg), self.rl_headers(valid, now))
            elif kind == "429":
                if valid is not None:
                    hdrs, data = self.too_many(valid, now, valid.limit)
                else:
                    w = self.cfg.window
                    reset = math.floor(now / w) * w + w
                    hdrs = [("X-RateLimit-Limit", str(self.cfg.limit)), ("X-RateLimit-Remaining", "0"),
                            ("X-RateLimit-Reset", str(int(reset))),
                            ("Retry-After", str(max(1, math.ceil(reset - now))))]
                    data = {"usage_count": self.cfg.limit, "usage_limit": self.cfg.limit, "remaining": 0,
                            "reset_at": iso(reset)}
                reply = Reply(429, envelope(True, "API rate limit exceeded", data), hdrs)
            else:
                ctx = Ctx(method, path, qs, headers, body, ctype, now)
                counted = None
                try:
                    if not path.startswith("/v1/"):
                        raise ApiError(404, "Route not found")
                    retired = self.drift["loop_endpoints"]
                    if retired and route is not None and is_loop_route(route[2]):
                        # The loops API after its transition period: answered
                        # before authentication, and not counted.
                        if retired == 301:
                            raise ApiError(301, "Moved Permanently", None, [("Location", MIGRATION_URL)])
                        if retired == 410:
                            raise ApiError(410, "This endpoint has been retired: loops are replaced by workflows")
                        raise ApiError(404, "Route not found")
                    if auth_error:
                        raise ApiError(401, auth_error)
                    if k is None or k.status == "revoked":
                        raise ApiError(401, "Invalid API key")
                    if k.status == "inactive" or self.drift["key_inactive"]:
                        raise ApiError(self.drift["key_inactive"] or k.inactive_status or 401, "API key is inactive")
                    self.roll(k, now)
                    if k.usage >= k.limit:
                        k.over_limit += 1
                        self.over_limit_attempts += 1
                        hdrs, data = self.too_many(k, now, k.usage)
                        raise ApiError(429, "API rate limit exceeded", data, hdrs)
                    k.usage += 1
                    counted = k
                    ctx.key = k
                    ctx.user = self.users[k.user_id]
                    ctx.user["last_active"] = now
                    if route is None:
                        raise ApiError(404, "Route not found")
                    if route[0] == "405":
                        raise ApiError(405, "Method not allowed", None, [("Allow", route[1])])
                    status, msg, data = getattr(self, route[0])(ctx, *route[1])
                    reply = Reply(status, envelope(False, msg, data))
                except ApiError as e:
                    reply = Reply(e.status, envelope(True, e.msg, e.data), list(e.headers))
                    if route and route[0] in ("h_create_request", "h_compat_create"):
                        self.create_errors.append({"t": iso(now), "path": raw_path, "status": e.status,
                                                   "msg": e.msg, "data": e.data})
                        del self.create_errors[:-MAX_CREATE_ERRORS]
                if not any(h[0] == "X-RateLimit-Limit" for h in reply.headers):
                    reply.headers = self.rl_headers(counted, now) + reply.headers
                if kind == "commit_no_reply":
                    reply.action = "reset"
                elif kind == "slow":
                    reply.action = "slow"
                    reply.seconds = fault["seconds"]
            call["status"] = reply.status if reply.action not in ("reset", "hang") or kind == "commit_no_reply" else None
            self.calls_total += 1
            self.calls.append(call)
            if len(self.calls) > MAX_CALL_LOG:
                drop = len(self.calls) - MAX_CALL_LOG
                del self.calls[:drop]
                self.calls_dropped += drop
        self.log("%s %s %s %s key=%s%s %.1fms" % (
            call["t"], method, raw_path, call["status"] if call["status"] is not None else "-",
            call["key"] or "-", (" fault=" + kind) if kind else "", (time.monotonic() - t0) * 1000))
        return reply

    # ---- helpers for handlers

    def body_object(self, ctx):
        """The JSON object body (or raises Invalid request body)."""
        if not ctx.body:
            raise invalid_body("body")
        if not ctx.ctype_json:
            raise ApiError(400, "Invalid request body",
                           {"field": "body", "issue": "Content-Type must be application/json"})
        try:
            obj = parse_json(ctx.body)
        except (ValueError, RecursionError):
            raise invalid_body("body")
        if not isinstance(obj, dict):
            raise invalid_body("body")
        return obj

    def find_loop(self, loop_id):
        if not HEX24.match(loop_id):
            raise ApiError(400, "Invalid loop ID format")
        loop = self.loops.get(loop_id.lower())
        if loop is None or loop["deleted"]:
            raise ApiError(404, "Loop not found")
        return loop

    def loop_visible(self, loop, uid):
        m = loop["members"].get(uid)
        return loop["creator_id"] == uid or (m is not None and m["status"] == "active")

    def find_request(self, req_id):
        if not HEX24.match(req_id):
            raise ApiError(400, "Invalid request ID format")
        r = self.requests.get(req_id.lower())
        if r is None or r["deleted"]:
            raise ApiError(404, "Request not found")
        return r

    # ---- endpoint handlers: (ctx, *path params) -> (status, msg, data)

    def h_test(self, ctx):
        k, u = ctx.key, ctx.user
        return 200, "API key is valid", {
            "api_key_id": k.id, "user_id": u["id"], "email": u["email"], "account_status": "active",
            "rate_limit": {"limit": k.limit, "remaining": max(0, k.limit - k.usage),
                           "reset_at": iso(k.window_start + self.cfg.window)},
            "permissions": list(PERMISSIONS)}

    def check_loop_fields(self, body, creating):
        if creating:
            if body.get("name") is None:
                raise validation("name is required")
        if "name" in body and body["name"] is not None:
            if not isinstance(body["name"], str):
                raise validation("name must be a string")
            if not 1 <= len(body["name"]) <= 100:
                raise validation("name must be between 1 and 100 characters")
        if "description" in body and body["description"] is not None:
            if not isinstance(body["description"], str):
                raise validation("description must be a string")
            if len(body["description"]) > 500:
                raise validation("description must be at most 500 characters")
        if creating and body.get("icon") is None:
            raise validation("icon is required")
        if "icon" in body and body["icon"] is not None:
            if not isinstance(body["icon"], str):
                raise validation("icon must be a string")
            if not 1 <= len(body["icon"]) <= 100:
                raise validation("icon must be between 1 and 100 characters")

    def h_create_loop(self, ctx):
        body = self.body_object(ctx)
        self.check_loop_fields(body, True)
        loop = self.create_loop(ctx.user["id"], body["name"], body["icon"], body.get("description"), ctx.now)
        code = loop["invite_code"]
        return 201, "Loop created successfully with QR code", {
            "loop": self.loop_obj(loop), "invite_code": code,
            "qr_code_base64": "data:image/png;base64," + TINY_PNG_B64,
            "qr_code_url": "https://api.hitl.sh/qr/%s.png" % code,
            "join_url": "https://my.hitl.sh/join/%s" % code}

    def h_list_loops(self, ctx):
        uid = ctx.user["id"]
        loops = [self.loop_obj(lp) for lp in self.loops.values() if not lp["deleted"] and self.loop_visible(lp, uid)]
        return 200, "Loops retrieved successfully", {"loops": loops, "count": len(loops)}

    def h_get_loop(self, ctx, loop_id):
        loop = self.find_loop(loop_id)
        if not self.loop_visible(loop, ctx.user["id"]):
            raise ApiError(403, "Access denied to this loop")
        return 200, "Loop retrieved successfully", {"loop": self.loop_obj(loop)}

    def own_loop(self, ctx, loop_id):
        loop = self.find_loop(loop_id)
        if loop["creator_id"] != ctx.user["id"]:
            raise ApiError(403, "Access denied to this loop")
        return loop

    def h_update_loop(self, ctx, loop_id):
        loop = self.own_loop(ctx, loop_id)
        if not ctx.body:
            raise ApiError(400, "At least one field must be provided for update")
        body = self.body_object(ctx)
        if not any(body.get(f) is not None for f in ("name", "description", "icon")):
            raise ApiError(400, "At least one field must be provided for update")
        self.check_loop_fields(body, False)
        for f in ("name", "description", "icon"):
            if body.get(f) is not None:
                loop[f] = body[f]
        loop["updated_at"] = ctx.now
        return 200, "Loop updated successfully", {"loop": self.loop_obj(loop)}

    def h_delete_loop(self, ctx, loop_id):
        loop = self.own_loop(ctx, loop_id)
        reqs = [r for r in self.requests.values() if r["loop_id"] == loop["id"] and not r["deleted"]]
        responses = sum(1 for r in reqs if r["status"] == "completed")
        for r in reqs:
            r["deleted"] = True
            self.active_ids.discard(r["id"])
        loop["deleted"] = True
        return 200, "Loop deleted successfully", {
            "loop_id": loop["id"], "deleted_at": iso(ctx.now),
            "deleted_data": {"members_removed": len(loop["members"]), "requests_deleted": len(reqs),
                             "responses_deleted": responses}}

    def h_members(self, ctx, loop_id):
        loop = self.find_loop(loop_id)
        if not self.loop_visible(loop, ctx.user["id"]):
            raise ApiError(403, "Access denied to this loop")
        members = [self.member_obj(loop, uid, True) for uid in loop["members"]]
        active = [m for m in loop["members"].values() if m["status"] == "active"]
        joins = [m["joined_at"] for m in active]
        waits = [(m["joined_at"] - m["invited_at"]) / 86400.0 for m in active]
        stats = {"avg_join_time_days": round(sum(waits) / len(waits), 2) if waits else 0,
                 "newest_member_joined": iso(max(joins)) if joins else None,
                 "oldest_member_joined": iso(min(joins)) if joins else None}
        return 200, "Loop members retrieved successfully", {
            "members": members, "total_count": len(members), "active_count": len(active),
            "pending_count": len(members) - len(active), "statistics": stats}

    def h_remove_member(self, ctx, loop_id, user_id):
        loop = self.own_loop(ctx, loop_id)
        if not HEX24.match(user_id):
            raise ApiError(400, "Invalid user ID format")
        user_id = user_id.lower()
        if user_id == loop["creator_id"]:
            raise ApiError(400, "Loop creator cannot be removed")
        if user_id not in loop["members"]:
            raise ApiError(404, "Member not found in this loop")
        del loop["members"][user_id]
        loop["updated_at"] = ctx.now
        return 200, "Member removed from loop successfully", {
            "loop_id": loop["id"], "user_id": user_id, "removed_at": iso(ctx.now)}

    def validate_create(self, body, compat=False):
        for f in body:
            if f not in CREATE_FIELDS and not (compat and f == "loop_id"):
                raise ApiError(400, "Invalid request body", {"field": f, "issue": "Unknown field"})
        for f in ("processing_type", "type", "priority", "request_text", "response_type",
                  "response_config", "default_response"):
            if body.get(f) is None:
                raise invalid_body(f)
        pt = enum_check(body, "processing_type", PROCESSING_TYPES)
        ctype = enum_check(body, "type", CONTENT_TYPES)
        enum_check(body, "priority", PRIORITIES)
        text = body["request_text"]
        if not isinstance(text, str) or not 1 <= len(text) <= 2000:
            raise validation("request_text must be between 1 and 2000 characters")
        rtypes = [t for t in RESPONSE_TYPES if not (self.cfg.no_boolean and t == "boolean")]
        rtype = enum_check(body, "response_type", rtypes)
        if body.get("platform") is not None:
            enum_check(body, "platform", PLATFORMS)
        if present(body, "platform_version") and not isinstance(body["platform_version"], str):
            raise validation("platform_version must be a string")
        for t, fields in CONTENT_FIELDS.items():
            for f in fields:
                if t == ctype and body.get(f) is None:
                    raise validation("%s is required when type is %s" % (f, t))
                if t != ctype and present(body, f):
                    raise validation("%s is only allowed when type is %s" % (f, t))
        for f in CONTENT_URL_FIELDS:
            if present(body, f) and not is_http_url(body[f]):
                raise validation("%s must be a valid http or https URL" % f)
        for f, mx in (("file_type", 100), ("file_name", 255)):
            if present(body, f) and not (isinstance(body[f], str) and 1 <= len(body[f]) <= mx):
                raise validation("%s must be between 1 and %d characters" % (f, mx))
        ts = body.get("timeout_seconds")
        if ts is None:
            if pt == "time-sensitive":
                raise validation("timeout_seconds is required for time-sensitive requests")
            ts = DEFERRED_DEFAULT
        elif not is_int(ts):
            raise validation("timeout_seconds must be an integer")
        elif not TS_MIN <= ts <= TS_MAX:
            # Every processing type (the API's schema and errors page).
            raise validation("timeout_seconds must be between %d and %d" % (TS_MIN, TS_MAX))
        if present(body, "callback_url") and not is_http_url(body["callback_url"]):
            raise validation("callback_url must be a valid http or https URL")
        if present(body, "context") and not isinstance(body["context"], dict):
            raise validation("context must be an object")
        stored, spec = config_spec(rtype, body["response_config"])
        try:
            parse_answer(rtype, spec, body["default_response"], "default_response", False)
        except AnswerError as e:
            raise validation(str(e))
        return ts, stored

    def h_create_request(self, ctx, loop_id, body=None):
        compat = body is not None
        if self.drift["quota_exhausted"]:
            # Undocumented: the wording and status of a spent monthly quota.
            t = time.gmtime(ctx.now)
            nxt = calendar.timegm((t.tm_year + (t.tm_mon == 12), t.tm_mon % 12 + 1, 1, 0, 0, 0))
            raise ApiError(403, QUOTA_MSG, {"plan": "free", "limit": 500, "used": 500, "reset_at": iso(nxt)})
        loop = self.find_loop(loop_id)
        if loop["creator_id"] != ctx.user["id"]:
            raise ApiError(403, "Only loop creators can create requests")
        if body is None:
            body = self.body_object(ctx)
        ts, stored = self.validate_create(body, compat)
        active = self.active_members(loop)
        if not active:
            raise ApiError(400, "No active members found in the loop")
        now = ctx.now
        self.seq += 1
        rid = self.new_id(now)
        recipients = [{"user_id": uid, "email": self.users[uid]["email"],
                       "role": "admin" if uid == loop["creator_id"] else "member",
                       "notification_sent": True, "notification_error": None} for uid in active]
        r = {"id": rid, "seq": self.seq, "loop_id": loop["id"], "creator_id": ctx.user["id"],
             "api_key_id": ctx.key.id, "key": ctx.key.key,
             "processing_type": body["processing_type"], "type": body["type"], "priority": body["priority"],
             "request_text": body["request_text"], "image_url": body.get("image_url"),
             "file_url": body.get("file_url"), "file_type": body.get("file_type"),
             "file_name": body.get("file_name"), "video_url": body.get("video_url"),
             "audio_url": body.get("audio_url"), "create_body": body,
             "context": body.get("context"), "platform": body.get("platform") or "api",
             "platform_version": body.get("platform_version"), "response_type": body["response_type"],
             "response_config": stored, "default_response": body["default_response"],
             "timeout_seconds": ts, "timeout_at": float(math.floor(now) + ts),
             "callback_url": body.get("callback_url"), "broadcasted_to": recipients,
             "status": "pending", "response_by": None, "response_at": None, "response_data": None,
             "response_time_seconds": None, "created_at": now, "updated_at": now, "deleted": False,
             "claimed_by": None, "claimed_at": None, "feedback": None, "ar_jitter": None, "ar_tried": False}
        self.requests[rid] = r
        self.active_ids.add(rid)
        self.creates += 1
        return 201, "Request created and broadcasted successfully", {
            "request_id": rid, "status": "pending", "processing_type": r["processing_type"],
            "type": r["type"], "priority": r["priority"], "timeout_at": iso(r["timeout_at"]),
            "broadcasted_to": len(recipients), "notifications_sent": len(recipients),
            "polling_url": "/v1/api/requests/%s" % rid}

    def h_loop_requests(self, ctx, loop_id):
        loop = self.find_loop(loop_id)
        if not self.loop_visible(loop, ctx.user["id"]):
            raise ApiError(403, "Access denied to this loop")
        reqs = [r for r in self.requests.values() if r["loop_id"] == loop["id"] and not r["deleted"]]
        reqs.sort(key=lambda r: (r["created_at"], r["seq"]), reverse=True)
        return 200, "Loop requests retrieved successfully", {
            "loop_id": loop["id"], "requests": [self.req_full(r) for r in reqs], "count": len(reqs)}

    def h_list_requests(self, ctx):
        q = urllib.parse.parse_qs(ctx.query, keep_blank_values=True)

        def param(name):
            v = q.get(name)
            return v[0] if v and v[0] != "" else None

        status, prio, loop_id, sort = param("status"), param("priority"), param("loop_id"), param("sort")
        if status is not None and status not in STATUSES:
            raise validation("status must be one of: " + ", ".join(STATUSES))
        if prio is not None and prio not in PRIORITIES:
            raise validation("priority must be one of: " + ", ".join(PRIORITIES))
        if sort is not None and sort not in SORTS:
            raise validation("sort must be one of: " + ", ".join(SORTS))
        if loop_id is not None and not HEX24.match(loop_id):
            raise ApiError(400, "Invalid loop ID format")
        sort = sort or "created_at_desc"
        try:
            limit = int(param("limit"))
        except (TypeError, ValueError):
            limit = 50
        if not 1 <= limit <= 100:
            limit = 50
        try:
            offset = int(param("offset"))
        except (TypeError, ValueError):
            offset = 0
        if offset < 0:
            offset = 0
        reqs = [r for r in self.requests.values()
                if r["key"] == ctx.key.key and r["api_key_id"] == ctx.key.id and not r["deleted"]
                and (status is None or r["status"] == status)
                and (prio is None or r["priority"] == prio)
                and (loop_id is None or r["loop_id"] == loop_id.lower())]
        reqs.sort(key=lambda r: (r["created_at"], r["seq"]), reverse=True)   # newest first
        if sort == "created_at_asc":
            reqs.reverse()
        elif sort == "priority_desc":
            reqs.sort(key=lambda r: -PRIORITY_RANK[r["priority"]])
        elif sort == "status_asc":
            reqs.sort(key=lambda r: r["status"])
        total = len(reqs)
        page = reqs[offset:offset + limit]
        has_more = offset + len(page) < total
        return 200, "Requests retrieved successfully", {
            "requests": [self.req_summary(r) for r in page], "count": len(page), "total": total,
            "has_more": has_more,
            "pagination": {"limit": limit, "offset": offset, "next_offset": offset + limit if has_more else None}}

    def h_get_request(self, ctx, req_id):
        r = self.find_request(req_id)
        if r["creator_id"] != ctx.user["id"]:
            raise ApiError(403, "Access denied to this request")
        if self.drift["status_shape"] == "flat":
            return 200, "Request retrieved successfully", self.req_full(r)
        return 200, "Request retrieved successfully", {"request": self.req_full(r)}

    def h_cancel(self, ctx, req_id):
        r = self.find_request(req_id)
        if r["creator_id"] != ctx.user["id"]:
            raise ApiError(403, "Access denied to this request")
        allowed = ("pending",) if self.cfg.cancel_pending_only else ("pending", "claimed")
        if r["status"] not in allowed:
            raise ApiError(400, "Request cannot be cancelled in current state")
        prev = r["status"]
        if prev == "pending":
            # --no-refund: the body still says refunded (as the docs do), but
            # the quota is not given back; clients must trust the headers.
            refund = {"refunded": True, "reason": "Request cancelled before processing began"}
            if not self.cfg.no_refund:
                ctx.key.usage = max(0, ctx.key.usage - 1)
        else:
            refund = {"refunded": False, "reason": "Request was already being processed by reviewer"}
        self.finish(r, "cancelled", ctx.now)
        return 200, "Request cancelled successfully", {
            "request_id": r["id"], "status": "cancelled", "cancelled_at": iso(ctx.now),
            "previous_status": prev, "refund_info": refund}

    def h_feedback(self, ctx, req_id):
        r = self.find_request(req_id)
        if r["api_key_id"] != ctx.key.id or r["key"] != ctx.key.key:
            raise ApiError(404, "Request not found")
        body = self.body_object(ctx)
        fb = body.get("feedback")
        if not isinstance(fb, dict):
            raise invalid_body("feedback")
        if r["status"] != "completed":
            raise ApiError(400, "Feedback can only be added to completed requests")
        if not fb:
            raise validation("feedback must contain at least one field")
        for f in ("rating", "accuracy", "timeliness", "helpfulness"):
            if f in fb and fb[f] is not None and not (is_num(fb[f]) and 1 <= fb[f] <= 5):
                raise ApiError(400, "Rating values must be between 1 and 5")
        if fb.get("comment") is not None:
            if not isinstance(fb["comment"], str):
                raise validation("comment must be a string")
            if len(fb["comment"]) > 1000:
                raise ApiError(400, "Comment exceeds maximum length of 1000 characters")
        for f in ("would_recommend", "follow_up_needed"):
            if fb.get(f) is not None and not isinstance(fb[f], bool):
                raise validation("%s must be a boolean" % f)
        if fb.get("tags") is not None and not (isinstance(fb["tags"], list)
                                               and all(isinstance(t, str) for t in fb["tags"])):
            raise validation("tags must be an array of strings")
        if fb.get("category") is not None and fb["category"] not in FEEDBACK_CATEGORIES:
            raise validation("category must be one of: " + ", ".join(FEEDBACK_CATEGORIES))
        if r["feedback"] is not None:
            raise ApiError(400, "Feedback already exists for this request")
        r["feedback"] = {"feedback_id": self.new_id(ctx.now), "feedback": fb, "submitted_at": ctx.now}
        return 200, "Feedback added successfully", {
            "request_id": r["id"], "feedback": fb, "feedback_id": r["feedback"]["feedback_id"],
            "submitted_at": iso(ctx.now), "reviewer_notified": True}

    def h_trigger(self, ctx, wf_id):
        if not WORKFLOW_ID.match(wf_id):
            raise ApiError(400, "Invalid workflow ID format")
        wf = self.workflows.get(wf_id)
        if wf is None:
            raise ApiError(404, "Workflow not found")
        if wf["user_id"] is not None and wf["user_id"] != ctx.user["id"]:
            raise ApiError(403, "Access denied to this workflow")
        payload = None
        if ctx.body:
            if not ctx.ctype_json:
                raise ApiError(400, "Invalid request body",
                               {"field": "body", "issue": "Content-Type must be application/json"})
            try:
                payload = parse_json(ctx.body)
            except (ValueError, RecursionError):
                raise invalid_body("body")
        exec_id = "exec_" + self.new_id(ctx.now)
        wf["triggers"] += 1
        self.triggers += 1
        wf["executions"].append({"execution_id": exec_id, "at": iso(ctx.now), "key": mask(ctx.key.key),
                                 "body": payload})
        del wf["executions"][:-MAX_TRIGGER_LOG]
        return 200, "Workflow triggered successfully", {
            "execution_id": exec_id, "workflow_id": wf_id, "status": "running", "triggered_at": iso(ctx.now)}

    # compat routes (--compat-routes only; unconfirmed in the docs)

    def h_compat_create(self, ctx):
        body = self.body_object(ctx)
        if body.get("loop_id") is None:
            raise invalid_body("loop_id")
        if not isinstance(body["loop_id"], str):
            raise ApiError(400, "Invalid loop ID format")
        return self.h_create_request(ctx, body["loop_id"], body)

    def h_compat_patch(self, ctx, req_id):
        r = self.find_request(req_id)
        if r["creator_id"] != ctx.user["id"]:
            raise ApiError(403, "Access denied to this request")
        body = self.body_object(ctx)
        fields = [f for f in ("priority", "request_text", "context", "callback_url") if body.get(f) is not None]
        if not fields:
            raise ApiError(400, "At least one field must be provided for update")
        if r["status"] not in ("pending", "claimed"):
            raise ApiError(400, "Request cannot be updated in current state")
        if "priority" in fields:
            enum_check(body, "priority", PRIORITIES)
        if "request_text" in fields and not (isinstance(body["request_text"], str)
                                             and 1 <= len(body["request_text"]) <= 2000):
            raise validation("request_text must be between 1 and 2000 characters")
        if "context" in fields and not isinstance(body["context"], dict):
            raise validation("context must be an object")
        if "callback_url" in fields and not is_http_url(body["callback_url"]):
            raise validation("callback_url must be a valid http or https URL")
        for f in fields:
            r[f] = body[f]
        r["updated_at"] = ctx.now
        return 200, "Request updated successfully", {"request": self.req_full(r)}

    def h_compat_cancel(self, ctx, req_id):
        return self.h_cancel(ctx, req_id)

    # ---- control endpoints (/_emu/...)

    def control(self, method, raw_path, body):
        path, _, qs = raw_path.partition("?")
        with self.lock:
            now = self.now()
            self.advance(now)
            try:
                obj = None
                if method in ("POST", "PUT"):
                    if body:
                        try:
                            obj = parse_json(body)
                        except (ValueError, RecursionError):
                            raise CtlError(400, "Body is not valid JSON")
                    else:
                        obj = {}
                    if not isinstance(obj, dict):
                        raise CtlError(400, "Body must be a JSON object")
                handler, params = match_control(path, method)
                status, data = handler(self, obj, urllib.parse.parse_qs(qs), now, *params)
                reply = Reply(status, data)
            except CtlError as e:
                reply = Reply(e.status, {"error": True, "msg": e.msg})
            self.advance(self.now())
        self.log("%s %s %s %s (control)" % (iso(now), method, raw_path, reply.status))
        return reply

    def ctl_key(self, key):
        k = self.keys.get(key)
        if k is None or k.status == "revoked":
            raise CtlError(404, "Key not found")
        return k

    def key_info(self, k, now):
        self.roll(k, now)
        return {"key": k.key, "key_masked": mask(k.key), "user_id": k.user_id, "api_key_id": k.id,
                "email": self.users[k.user_id]["email"], "limit": k.limit, "status": k.status,
                "inactive_status": k.inactive_status,
                "usage": k.usage, "remaining": max(0, k.limit - k.usage),
                "reset": int(k.window_start + self.cfg.window)}

    def c_health(self, obj, q, now):
        return 200, {"ok": True}

    def c_add_key(self, obj, q, now):
        key = obj.get("key")
        if not isinstance(key, str) or not key or any(c.isspace() for c in key) or len(key) > 512:
            raise CtlError(400, "key must be a non-empty string without whitespace")
        if key in self.keys and self.keys[key].status != "revoked":
            raise CtlError(409, "Key already exists")
        limit = obj.get("limit", self.cfg.limit)
        if not is_int(limit) or limit < 0:
            raise CtlError(400, "limit must be an integer >= 0")
        status = obj.get("status", "active")
        if status not in ("active", "inactive"):
            raise CtlError(400, "status must be active or inactive")
        em, uid = obj.get("email"), obj.get("user_id")
        if em is not None and (not isinstance(em, str) or "@" not in em):
            raise CtlError(400, "email must be an email address")
        if uid is not None and (not isinstance(uid, str) or not HEX24.match(uid)):
            raise CtlError(400, "user_id must be 24 hex characters")
        user = None
        if uid is not None:
            user = self.users.get(uid.lower())
            if user is not None and em is not None and user["email"].lower() != em.lower():
                raise CtlError(400, "user_id belongs to another email")
        if user is None and em is not None:
            user = self.users_by_email.get(em.lower())
            if user is not None and uid is not None:
                raise CtlError(400, "email belongs to another user_id")
        if user is None:
            user = self.add_user(em, uid, now)
        k = Key(key, self.new_id(now), user["id"], limit, status, now)
        self.keys[key] = k
        return 201, self.key_info(k, now)

    def c_update_key(self, obj, q, now, key):
        k = self.ctl_key(key)
        if "limit" in obj:
            if not is_int(obj["limit"]) or obj["limit"] < 0:
                raise CtlError(400, "limit must be an integer >= 0")
        if "status" in obj and obj["status"] not in ("active", "inactive"):
            raise CtlError(400, "status must be active or inactive")
        if "inactive_status" in obj and obj["inactive_status"] not in (None, 401, 403):
            raise CtlError(400, "inactive_status must be 401, 403 or null")
        if "inactive_status" in obj:
            k.inactive_status = obj["inactive_status"]
        if "limit" in obj:
            k.limit = obj["limit"]
        if "status" in obj:
            k.status = obj["status"]
        return 200, self.key_info(k, now)

    def c_revoke_key(self, obj, q, now, key):
        k = self.ctl_key(key)
        k.status = "revoked"
        return 200, {"key_masked": mask(k.key), "revoked": True}

    def c_spend(self, obj, q, now, key):
        k = self.ctl_key(key)
        calls = obj.get("calls")
        if not is_int(calls) or calls < 0:
            raise CtlError(400, "calls must be an integer >= 0")
        self.roll(k, now)
        k.usage = min(k.limit, k.usage + calls)
        return 200, self.key_info(k, now)

    def c_add_loop(self, obj, q, now):
        key = obj.get("key")
        if not isinstance(key, str):
            raise CtlError(400, "key is required")
        k = self.ctl_key(key)
        name = obj.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise CtlError(400, "name must be a string of 1 to 100 characters")
        icon = obj.get("icon", "inbox")
        desc = obj.get("description")
        if not isinstance(icon, str) or (desc is not None and not isinstance(desc, str)):
            raise CtlError(400, "icon and description must be strings")
        lists = {}
        for f in ("members", "pending_members"):
            v = obj.get(f, [])
            if not isinstance(v, list) or not all(isinstance(e, str) and "@" in e for e in v):
                raise CtlError(400, "%s must be an array of email addresses" % f)
            lists[f] = v
        loop = self.create_loop(k.user_id, name, icon, desc, now)
        for f, status in (("members", "active"), ("pending_members", "pending")):
            for em in lists[f]:
                u = self.user_for_email(em, now)
                if u["id"] != loop["creator_id"]:
                    self.set_member(loop, u["id"], status, now)
        out = self.loop_obj(loop)
        out["invite_code"] = loop["invite_code"]
        return 201, out

    def c_add_member(self, obj, q, now, loop_id):
        loop = self.loops.get(loop_id.lower())
        if loop is None or loop["deleted"]:
            raise CtlError(404, "Loop not found")
        em, status = obj.get("email"), obj.get("status", "active")
        if not isinstance(em, str) or "@" not in em:
            raise CtlError(400, "email must be an email address")
        if status not in ("active", "pending"):
            raise CtlError(400, "status must be active or pending")
        u = self.user_for_email(em, now)
        self.set_member(loop, u["id"], status, now)
        return 200, self.member_obj(loop, u["id"], True)

    def c_requests(self, obj, q, now):
        def one(name):
            v = q.get(name)
            return v[0] if v else None
        hid, lid, st = one("hitld_id"), one("loop_id"), one("status")
        incl = one("include_deleted") in ("1", "true")
        out = []
        for r in sorted(self.requests.values(), key=lambda r: r["seq"]):
            if r["deleted"] and not incl:
                continue
            ctx = r["context"]
            if hid is not None and not (isinstance(ctx, dict) and str(ctx.get("hitld_id")) == hid):
                continue
            if lid is not None and r["loop_id"] != lid.lower():
                continue
            if st is not None and r["status"] != st:
                continue
            out.append(self.req_emu(r))
        return 200, {"requests": out, "count": len(out)}

    def ctl_request(self, req_id):
        r = self.requests.get(req_id.lower())
        if r is None or r["deleted"]:
            raise CtlError(404, "Request not found")
        return r

    def ctl_reviewer(self, obj, loop, r):
        uid = obj.get("user_id")
        if uid is None:
            if r["status"] == "claimed":
                return r["claimed_by"]
            return self.default_reviewer(loop)
        if not isinstance(uid, str) or uid.lower() not in self.users:
            raise CtlError(400, "Unknown user_id")
        uid = uid.lower()
        m = loop["members"].get(uid)
        if m is None or m["status"] != "active":
            raise CtlError(400, "User is not an active member of this loop")
        return uid

    def c_claim(self, obj, q, now, req_id):
        r = self.ctl_request(req_id)
        if r["status"] != "pending":
            raise CtlError(400, "Request is no longer pending")
        uid = self.ctl_reviewer(obj, self.loops[r["loop_id"]], r)
        r.update(status="claimed", claimed_by=uid, claimed_at=now, updated_at=now)
        self.users[uid]["last_active"] = now
        return 200, self.req_emu(r)

    def c_release(self, obj, q, now, req_id):
        r = self.ctl_request(req_id)
        if r["status"] != "claimed":
            raise CtlError(400, "Request is not claimed")
        r.update(status="pending", claimed_by=None, claimed_at=None, updated_at=now)
        return 200, self.req_emu(r)

    def c_respond(self, obj, q, now, req_id):
        r = self.ctl_request(req_id)
        if r["status"] not in ("pending", "claimed"):
            raise CtlError(400, "Request is no longer pending")
        uid = self.ctl_reviewer(obj, self.loops[r["loop_id"]], r)
        if r["status"] == "claimed" and uid != r["claimed_by"]:
            raise CtlError(400, "Request is claimed by another reviewer")
        if "response_data" not in obj:
            raise CtlError(400, "Invalid response_data: response_data is required")
        try:
            canon = parse_answer(r["response_type"], self.req_spec(r), obj["response_data"], "response_data", True)
        except AnswerError as e:
            raise CtlError(400, "Invalid response_data: %s" % e)
        self.complete_with(r, uid, canon, now)
        return 200, self.req_emu(r)

    def c_show_status(self, obj, q, now, req_id):
        r = self.ctl_request(req_id)
        word = obj.get("status")
        if word is not None and not (isinstance(word, str) and 0 < len(word) <= 64):
            raise CtlError(400, "status must be a string of 1 to 64 characters, or null")
        r["status_override"] = word
        return 200, self.req_emu(r)

    def c_auto_review_get(self, obj, q, now):
        ar = dict(self.autoreview)
        ar.pop("enabled_at", None)
        return 200, ar

    def c_auto_review(self, obj, q, now):
        if obj.get("enabled") is False:
            self.autoreview = {"enabled": False}
            return self.c_auto_review_get(obj, q, now)
        delay = obj.get("delay_s")
        jitter = obj.get("jitter_s", 0)
        rules = obj.get("rules", [])
        mode = obj.get("default", "first")
        if not is_num(delay) or delay < 0:
            raise CtlError(400, "delay_s must be a number >= 0")
        if not is_num(jitter) or jitter < 0:
            raise CtlError(400, "jitter_s must be a number >= 0")
        if not isinstance(rules, list) or not all(
                isinstance(x, dict) and isinstance(x.get("match"), str) and "response_data" in x for x in rules):
            raise CtlError(400, "rules must be an array of {match, response_data}")
        if mode not in ("first", "default", "none"):
            raise CtlError(400, "default must be first, default or none")
        self.autoreview = {"enabled": True, "delay_s": float(delay), "jitter_s": float(jitter),
                           "rules": [{"match": x["match"], "response_data": x["response_data"]} for x in rules],
                           "default": mode, "enabled_at": now}
        for rid in self.active_ids:
            self.requests[rid]["ar_jitter"] = None
            self.requests[rid]["ar_tried"] = False
        return self.c_auto_review_get(obj, q, now)

    def fault_obj(self, f):
        return {"id": f["id"], "kind": f["kind"], "count": f["remaining"], "match": f["match"],
                "seconds": f["seconds"]}

    def c_add_fault(self, obj, q, now):
        kind = obj.get("kind")
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)
        if kind not in FAULT_KINDS:
            raise CtlError(400, "kind must be one of: " + ", ".join(FAULT_KINDS))
        count = obj.get("count", 1)
        if not is_int(count) or count < 1:
            raise CtlError(400, "count must be an integer >= 1")
        match = obj.get("match") or {}
        if not isinstance(match, dict) or any(k not in ("method", "path_prefix") for k in match) \
                or not all(isinstance(v, str) for v in match.values()):
            raise CtlError(400, "match must be an object with optional string method and path_prefix")
        seconds = obj.get("seconds", 60 if kind == "hang" else 2)
        if not is_num(seconds) or seconds < 0:
            raise CtlError(400, "seconds must be a number >= 0")
        self.fault_seq += 1
        f = {"id": self.fault_seq, "kind": kind, "remaining": count, "match": match, "seconds": float(seconds)}
        self.faults.append(f)
        return 201, self.fault_obj(f)

    def c_list_faults(self, obj, q, now):
        return 200, {"faults": [self.fault_obj(f) for f in self.faults]}

    def c_clear_faults(self, obj, q, now):
        n = len(self.faults)
        self.faults = []
        return 200, {"cleared": n}

    def c_drift_get(self, obj, q, now):
        return 200, dict(self.drift)

    def c_drift(self, obj, q, now):
        new = dict(self.drift)
        for k, v in obj.items():
            if k not in DRIFT_CHOICES:
                raise CtlError(400, "unknown drift switch %s (known: %s)" % (k, ", ".join(sorted(DRIFT_CHOICES))))
            ok = any(v is c or (type(v) is type(c) and v == c) for c in DRIFT_CHOICES[k])
            if not ok:
                raise CtlError(400, "%s must be one of: %s" % (k, ", ".join(json.dumps(c) for c in DRIFT_CHOICES[k])))
            new[k] = v
        self.drift = new
        return 200, dict(self.drift)

    def c_callbacks_get(self, obj, q, now):
        return 200, self.callbacks_obj()

    def callbacks_obj(self):
        out = dict(self.cb_control)
        out.update({k: self.cb[k] for k in ("sent", "failed", "skipped_non_loopback", "attempts", "delivered",
                                             "dropped", "duplicated", "retried")})
        out["retry_delays_s"] = self.retry_delays()
        return out

    def c_callbacks(self, obj, q, now):
        new = dict(self.cb_control)
        for k, v in obj.items():
            if k not in CALLBACK_SWITCHES:
                raise CtlError(400, "unknown callbacks switch %s (known: %s)" % (k, ", ".join(sorted(CALLBACK_SWITCHES))))
            if k in ("drop", "duplicate"):
                if not is_num(v) or not 0 <= v <= 1:
                    raise CtlError(400, "%s must be a number from 0 to 1" % k)
                v = float(v)
            elif k == "seed":
                if not is_int(v):
                    raise CtlError(400, "seed must be an integer")
            elif not isinstance(v, bool):
                raise CtlError(400, "%s must be true or false" % k)
            new[k] = v
        if "seed" in obj:
            self.cb_rng = random.Random(new["seed"])
        self.cb_control = new
        return 200, self.callbacks_obj()

    def workflow_obj(self, wf):
        return {"id": wf["id"], "name": wf["name"], "user_id": wf["user_id"], "triggers": wf["triggers"],
                "executions": list(wf["executions"])}

    def c_add_workflow(self, obj, q, now):
        wf_id = obj.get("id")
        if wf_id is None:
            wf_id = "wf_" + self.new_id(now)[-12:]
        if not isinstance(wf_id, str) or not WORKFLOW_ID.match(wf_id):
            raise CtlError(400, "id must look like wf_abc123")
        if wf_id in self.workflows:
            raise CtlError(409, "Workflow already exists")
        user_id = None
        if obj.get("key") is not None:
            if not isinstance(obj["key"], str):
                raise CtlError(400, "key must be a string")
            user_id = self.ctl_key(obj["key"]).user_id
        name = obj.get("name", wf_id)
        if not isinstance(name, str):
            raise CtlError(400, "name must be a string")
        wf = {"id": wf_id, "name": name, "user_id": user_id, "triggers": 0, "executions": []}
        self.workflows[wf_id] = wf
        return 201, self.workflow_obj(wf)

    def c_workflows(self, obj, q, now):
        return 200, {"workflows": [self.workflow_obj(wf) for wf in self.workflows.values()]}

    def clock_obj(self):
        now = self.now()
        return {"now": iso(now), "now_epoch": now, "offset": self.offset}

    def c_clock(self, obj, q, now):
        return 200, self.clock_obj()

    def c_clock_advance(self, obj, q, now):
        s = obj.get("seconds")
        if not is_num(s):
            raise CtlError(400, "seconds must be a number")
        self.offset += s
        return 200, self.clock_obj()

    def c_clock_set(self, obj, q, now):
        s = obj.get("offset_seconds")
        if not is_num(s):
            raise CtlError(400, "offset_seconds must be a number")
        self.offset = float(s)
        return 200, self.clock_obj()

    def duplicates(self):
        by_h = {}
        for r in sorted(self.requests.values(), key=lambda r: r["seq"]):
            ctx = r["context"]
            if isinstance(ctx, dict) and ctx.get("hitld_id") is not None:
                by_h.setdefault(json.dumps(ctx["hitld_id"], sort_keys=True), []).append(r["id"])
        groups = [g for g in by_h.values() if len(g) > 1]
        sim = {}
        for r in sorted(self.requests.values(), key=lambda r: (r["created_at"], r["seq"])):
            sim.setdefault((r["loop_id"], r["request_text"], r["creator_id"]), []).append(r)
        similar = []
        for rs in sim.values():
            cur = [rs[0]]
            for r in rs[1:]:
                if r["created_at"] - cur[-1]["created_at"] <= SIMILAR_WINDOW_S:
                    cur.append(r)
                else:
                    if len(cur) > 1:
                        similar.append([x["id"] for x in cur])
                    cur = [r]
            if len(cur) > 1:
                similar.append([x["id"] for x in cur])
        return {"by_hitld_id": groups, "similar": similar, "count": sum(len(g) - 1 for g in groups)}

    def c_stats(self, obj, q, now):
        names = {}
        for k in self.keys.values():
            names.setdefault(mask(k.key), []).append(k)
        per_key = {}
        for m, ks in names.items():
            for k in ks:
                name = m if len(ks) == 1 else "%s#%s" % (m, k.id)
                self.roll(k, now)
                per_key[name] = {
                    "api_key_id": k.id, "user_id": k.user_id, "status": k.status, "limit": k.limit,
                    "used_in_window": k.usage, "window_reset": iso(k.window_start + self.cfg.window),
                    "window_reset_epoch": int(k.window_start + self.cfg.window),
                    "calls_total": k.calls_total, "over_limit_attempts": k.over_limit,
                    "by_route": dict(k.by_route)}
        by_status = {s: 0 for s in STATUSES}
        deleted = 0
        for r in self.requests.values():
            if r["deleted"]:
                deleted += 1
            else:
                by_status[r["status"]] += 1
        calls = self.calls
        lim = q.get("calls")
        if lim:
            try:
                n = int(lim[0])
            except ValueError:
                raise CtlError(400, "calls must be an integer")
            calls = calls[-n:] if n > 0 else []
        return 200, {
            "now": iso(now), "calls_total": self.calls_total, "calls": calls, "calls_dropped": self.calls_dropped,
            "per_key": per_key, "over_limit_attempts": self.over_limit_attempts, "creates": self.creates,
            "requests_by_status": by_status, "requests_deleted": deleted, "duplicates": self.duplicates(),
            "create_errors": list(self.create_errors), "workflow_triggers": self.triggers,
            "workflows": {w["id"]: w["triggers"] for w in self.workflows.values()}, "drift": dict(self.drift),
            "faults_injected": self.faults_injected, "auto_reviewed": self.auto_reviewed,
            "auto_review_skipped": self.auto_review_skipped,
            "callbacks": {"sent": self.cb["sent"], "failed": self.cb["failed"],
                          "skipped_non_loopback": self.cb["skipped_non_loopback"],
                          "attempts": self.cb["attempts"], "delivered": self.cb["delivered"],
                          "dropped": self.cb["dropped"], "duplicated": self.cb["duplicated"],
                          "retried": self.cb["retried"], "deliveries": [dict(d) for d in self.cb["deliveries"]]}}

    def c_stats_reset(self, obj, q, now):
        self.reset_stats()
        return 200, {"ok": True}

    def c_reset(self, obj, q, now):
        self.wipe()
        return 200, {"ok": True, "keys": dict(self.provisioned["keys"]),
                     "default_loop_id": self.provisioned["default_loop_id"]}


class Ctx:
    def __init__(self, method, path, query, headers, body, ctype, now):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        mt = (ctype or "").split(";")[0].strip().lower()
        self.ctype_json = mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))
        self.now = now
        self.key = None
        self.user = None


def parse_auth(value):
    """-> (token, None) or (None, the 401 message). The scheme word is
    "Bearer", case and all, then one space and the key."""
    if value is None or value == "":
        return None, "Missing Authorization header"
    scheme, _, token = value.partition(" ")
    if scheme != "Bearer" or not token or any(c.isspace() for c in token):
        return None, "Invalid Authorization header format. Use 'Bearer <api_key>'"
    return token, None


def is_loop_route(template):
    """The loops API (what a retirement would remove): everything but the key
    test and workflows."""
    return not (template.endswith("/test") or "/workflows/" in template)


# --------------------------------------------------------------------------
# routing

# (regex on the path after /v1 or /v1/api, template, confirmed methods, unconfirmed methods)
API_ROUTES = [
    (r"/test", "/test", {"GET": "h_test"}, {}),
    (r"/loops", "/loops", {"GET": "h_list_loops", "POST": "h_create_loop"}, {}),
    (r"/loops/([^/]+)", "/loops/{id}", {"GET": "h_get_loop", "PUT": "h_update_loop", "DELETE": "h_delete_loop"}, {}),
    (r"/loops/([^/]+)/members", "/loops/{id}/members", {"GET": "h_members"}, {}),
    (r"/loops/([^/]+)/members/([^/]+)", "/loops/{id}/members/{userId}", {"DELETE": "h_remove_member"}, {}),
    (r"/loops/([^/]+)/requests", "/loops/{id}/requests",
     {"GET": "h_loop_requests", "POST": "h_create_request"}, {}),
    (r"/requests", "/requests", {"GET": "h_list_requests"}, {"POST": "h_compat_create"}),
    (r"/requests/([^/]+)", "/requests/{id}", {"GET": "h_get_request", "DELETE": "h_cancel"},
     {"PATCH": "h_compat_patch"}),
    (r"/requests/([^/]+)/feedback", "/requests/{id}/feedback", {"POST": "h_feedback"}, {}),
    (r"/requests/([^/]+)/cancel", "/requests/{id}/cancel", {}, {"POST": "h_compat_cancel"}),
    (r"/workflows/([^/]+)/trigger", "/workflows/{id}/trigger", {"POST": "h_trigger"}, {}),
]
API_ROUTES = [(re.compile("^" + rx + "$"), t, c, u) for rx, t, c, u in API_ROUTES]


def match_route(path, method, compat):
    """-> (handler name, params, template) | ("405", allow, template) | None."""
    if path.startswith("/v1/api/"):
        prefix, rest = "/v1/api", path[len("/v1/api"):]
    elif path.startswith("/v1/"):
        prefix, rest = "/v1", path[len("/v1"):]
    else:
        return None
    if len(rest) > 1 and rest.endswith("/"):
        rest = rest[:-1]
    for rx, tmpl, confirmed, unconfirmed in API_ROUTES:
        m = rx.match(rest)
        if not m:
            continue
        methods = dict(confirmed)
        if compat:
            methods.update(unconfirmed)
        params = [urllib.parse.unquote(p) for p in m.groups()]
        if method in methods:
            return methods[method], params, prefix + tmpl
        if method in unconfirmed or not methods:
            return None
        return "405", ", ".join(sorted(methods)), prefix + tmpl
    return None


CONTROL_ROUTES = [
    (r"/_emu/health", {"GET": Emulator.c_health}),
    (r"/_emu/keys", {"POST": Emulator.c_add_key}),
    (r"/_emu/keys/([^/]+)", {"POST": Emulator.c_update_key, "DELETE": Emulator.c_revoke_key}),
    (r"/_emu/keys/([^/]+)/spend", {"POST": Emulator.c_spend}),
    (r"/_emu/loops", {"POST": Emulator.c_add_loop}),
    (r"/_emu/loops/([^/]+)/members", {"POST": Emulator.c_add_member}),
    (r"/_emu/requests", {"GET": Emulator.c_requests}),
    (r"/_emu/requests/([^/]+)/claim", {"POST": Emulator.c_claim}),
    (r"/_emu/requests/([^/]+)/release", {"POST": Emulator.c_release}),
    (r"/_emu/requests/([^/]+)/respond", {"POST": Emulator.c_respond}),
    (r"/_emu/requests/([^/]+)/show-status", {"POST": Emulator.c_show_status}),
    (r"/_emu/auto-review", {"GET": Emulator.c_auto_review_get, "POST": Emulator.c_auto_review}),
    (r"/_emu/faults", {"GET": Emulator.c_list_faults, "POST": Emulator.c_add_fault,
                       "DELETE": Emulator.c_clear_faults}),
    (r"/_emu/clock", {"GET": Emulator.c_clock}),
    (r"/_emu/clock/advance", {"POST": Emulator.c_clock_advance}),
    (r"/_emu/clock/set", {"POST": Emulator.c_clock_set}),
    (r"/_emu/stats", {"GET": Emulator.c_stats}),
    (r"/_emu/stats/reset", {"POST": Emulator.c_stats_reset}),
    (r"/_emu/reset", {"POST": Emulator.c_reset}),
    (r"/_emu/drift", {"GET": Emulator.c_drift_get, "POST": Emulator.c_drift}),
    (r"/_emu/callbacks", {"GET": Emulator.c_callbacks_get, "POST": Emulator.c_callbacks}),
    (r"/_emu/workflows", {"GET": Emulator.c_workflows, "POST": Emulator.c_add_workflow}),
]
CONTROL_ROUTES = [(re.compile("^" + rx + "/?$"), m) for rx, m in CONTROL_ROUTES]


def match_control(path, method):
    for rx, methods in CONTROL_ROUTES:
        m = rx.match(path)
        if m:
            if method not in methods:
                raise CtlError(405, "Method not allowed")
            return methods[method], [urllib.parse.unquote(p) for p in m.groups()]
    raise CtlError(404, "Route not found")


# --------------------------------------------------------------------------
# HTTP

class BodyError(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hitl-emulator/" + VERSION
    sys_version = ""
    timeout = 600      # idle keep-alive connections are closed after this

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def date_time_string(self, timestamp=None):
        if timestamp is None:
            timestamp = self.server.emu.now()
        return email.utils.formatdate(timestamp, usegmt=True)

    def send_error(self, code, message=None, explain=None):
        # Malformed request lines/headers and unknown methods: JSON envelope too.
        if code == 501:
            code, msg = 405, "Method not allowed"
        else:
            msg = "Bad request" if code < 500 else "Internal server error"
        self.close_connection = True
        emu = self.server.emu
        body = dumps(envelope(True, msg))
        try:
            self.send_response(code)
            with emu.lock:
                for k, v in emu.rl_headers(None, emu.now()):
                    self.send_header(k, v)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    def handle_expect_100(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = 0
        if n > MAX_BODY:
            self.close_connection = True
            emu = self.server.emu
            with emu.lock:
                hdrs = emu.rl_headers(None, emu.now())
            self.send_reply(Reply(400, envelope(True, "Invalid request body",
                                                {"field": "body", "issue": "body too large"}), hdrs))
            return False
        return super().handle_expect_100()

    def read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BodyError("unsupported Transfer-Encoding")
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise BodyError("truncated chunked body")
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError("bad chunk size")
                if n == 0:
                    while True:          # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                if len(out) + n > MAX_BODY:
                    raise BodyError("body too large")
                chunk = self.rfile.read(n)
                if len(chunk) != n:
                    raise BodyError("truncated chunked body")
                out += chunk
                self.rfile.readline(8)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise BodyError("bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise BodyError("body too large")
        data = self.rfile.read(n)
        if len(data) != n:
            raise BodyError("truncated body")
        return data

    def handle_method(self):
        emu = self.server.emu
        method = self.command
        try:
            body = self.read_body()
        except BodyError as e:
            self.close_connection = True
            with emu.lock:
                hdrs = emu.rl_headers(None, emu.now())
            reply = Reply(400, envelope(True, "Invalid request body", {"field": "body", "issue": str(e)}), hdrs)
            self.send_reply(reply)
            return
        except OSError:
            self.close_connection = True
            return
        path = self.path
        if path.startswith("/_emu/") or path == "/_emu":
            reply = emu.control(method, path, body)
        else:
            hdrs = {"Authorization": self.headers.get("Authorization")}
            reply = emu.api(method, path, hdrs, body, self.headers.get("Content-Type"))
        self.send_reply(reply)

    def send_reply(self, reply):
        if reply.action == "reset":
            self.rst()
            return
        if reply.action == "hang":
            self.server.stopping.wait(reply.seconds)
            self.close_connection = True
            return
        if reply.action == "slow":
            if self.server.stopping.wait(reply.seconds):
                self.close_connection = True
                return
        try:
            self.send_response(reply.status)
            for k, v in reply.headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def rst(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_method


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass   # client went away etc.; never spam stderr with tracebacks


# --------------------------------------------------------------------------
# main

def parse_args(argv):
    ap = argparse.ArgumentParser(description="HITL.sh API emulator (tests, demo, benchmarks)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--window", type=int, default=3600, help="rate-limit window, seconds (default 3600)")
    ap.add_argument("--limit", type=int, default=100, help="calls per window per key (default 100)")
    ap.add_argument("--key", action="append", default=[], dest="keys", help="provision an API key (repeatable)")
    ap.add_argument("--loop-member", action="append", default=[],
                    help="create loop 'default' for the first key with this active member (repeatable)")
    ap.add_argument("--encoding", choices=["structured", "plain"], default="structured")
    ap.add_argument("--no-boolean", action="store_true")
    ap.add_argument("--cancel-pending-only", action="store_true")
    ap.add_argument("--no-refund", action="store_true")
    ap.add_argument("--compat-routes", action="store_true")
    ap.add_argument("--clock-offset", type=float, default=0.0)
    ap.add_argument("--auto-review", type=float, default=None, metavar="DELAY")
    ap.add_argument("--callback-secret", default=None)
    ap.add_argument("--callback-drop", type=float, default=0.0, metavar="FRACTION")
    ap.add_argument("--callback-duplicate", type=float, default=0.0, metavar="FRACTION")
    ap.add_argument("--callback-seed", type=int, default=0)
    ap.add_argument("--callback-retry-408-429", action="store_true")
    ap.add_argument("--drift-status-words", choices=["standard", "alt"], default="standard")
    ap.add_argument("--drift-status-shape", choices=["nested", "flat"], default="nested")
    ap.add_argument("--drift-key-inactive", type=int, choices=[401, 403], default=None)
    ap.add_argument("--drift-quota-exhausted", action="store_true")
    ap.add_argument("--drift-loop-endpoints", type=int, choices=[404, 410, 301], default=None)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.window < 1:
        ap.error("--window must be >= 1")
    if args.limit < 0:
        ap.error("--limit must be >= 0")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.auto_review is not None and args.auto_review < 0:
        ap.error("--auto-review must be >= 0")
    for k in args.keys:
        if not k or any(c.isspace() for c in k):
            ap.error("--key must be non-empty without whitespace")
    if len(set(args.keys)) != len(args.keys):
        ap.error("duplicate --key")
    for name in ("callback_drop", "callback_duplicate"):
        if not 0 <= getattr(args, name) <= 1:
            ap.error("--%s must be from 0 to 1" % name.replace("_", "-"))
    if args.loop_member and not args.keys:
        ap.error("--loop-member needs a --key")
    args.drift = {"status_words": args.drift_status_words, "status_shape": args.drift_status_shape,
                  "key_inactive": args.drift_key_inactive, "quota_exhausted": args.drift_quota_exhausted,
                  "loop_endpoints": args.drift_loop_endpoints}
    args.callbacks = {"drop": args.callback_drop, "duplicate": args.callback_duplicate, "seed": args.callback_seed,
                      "retry_408_429": args.callback_retry_408_429}
    return args


def loopback_family(host):
    if host == "localhost":
        return "127.0.0.1", socket.AF_INET
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None, None
    if not ip.is_loopback:
        return None, None
    return host, socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def write_port_file(path, info):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    host, family = loopback_family(args.host)
    if host is None:
        sys.stderr.write("hitl-emulator: refusing to listen on non-loopback host %r\n" % args.host)
        return 2
    emu = Emulator(args)

    class S(Server):
        address_family = family

    server = S((host, args.port), Handler)
    server.emu = emu
    server.stopping = threading.Event()
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    port = server.server_address[1]
    scheme = "https" if args.tls_cert else "http"
    hostpart = "[%s]" % host if family == socket.AF_INET6 else host
    info = {"port": port, "pid": os.getpid(), "host": host, "url": "%s://%s:%d" % (scheme, hostpart, port),
            "keys": dict(emu.provisioned["keys"])}
    if emu.provisioned["default_loop_id"]:
        info["default_loop_id"] = emu.provisioned["default_loop_id"]

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ticker():
        while not server.stopping.wait(TICK_S):
            with emu.lock:
                emu.advance(emu.now())

    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    threading.Thread(target=ticker, daemon=True).start()
    if args.port_file:
        write_port_file(args.port_file, info)
    sys.stderr.write("hitl-emulator listening on %s default_loop_id=%s\n"
                     % (info["url"], info.get("default_loop_id") or "-"))
    sys.stderr.flush()
    while not stop["flag"]:
        time.sleep(0.05)
    server.stopping.set()
    server.shutdown()
    server.server_close()
    if emu.logf:
        emu.logf.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
