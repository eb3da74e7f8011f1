/* msgid.h — stable journal MESSAGE_IDs of the events hitld logs; each has an
 * entry in systemd/hitld.catalog. Never change one once released. */
#pragma once

#define MID_REQUEST_ACCEPTED     "08a26b2cfa514433904b3c96a77c954f"
#define MID_REQUEST_CREATED      "df294434add8402fa16502c056a5356d"
#define MID_REQUEST_ANSWERED     "8afd027626f04362ada943919e297e43"
#define MID_REQUEST_TIMEOUT      "dc60b5f5906a47fe9412d6adf680ae65"
#define MID_REQUEST_CANCELLED    "bbb35a9e9c7042b5adba7eb0115603da"
#define MID_REQUEST_FAILED       "4e197e0e3466471ab3f4e7cc835dcb1a"
#define MID_BUDGET_EXHAUSTED     "ddddab7c2a70429f80a08ec7f214669a"
#define MID_RATE_LIMITED         "9a5a9e116b3c492ea3a0a4f4cb8dd62c"
#define MID_RECONCILED           "7e1441cc18ff44e8bf7eb0e250163428"
#define MID_RECORD_QUARANTINED   "a6f1f3e8b2c44c6f9d3e5b7a1c2d4e60"
#define MID_KEY_LOADED           "42ace8c7a52145a6aed1dbb29c434b6a"
#define MID_KEY_INVALID          "e5182723e95e4effa609ff4c7936356e"
#define MID_CONFIG_RELOADED      "3af96fbae758480a924e1ca49df516b9"
#define MID_DAEMON_STARTED       "8963d83af73442ea941eb8ec96ff7bb0"
#define MID_DAEMON_STOPPING      "7a3024b9299d4ef583e17774e16e5e2a"
#define MID_API_ERROR            "b18cf5f86fe94deba3fbdc39bbf24b8b"
#define MID_FEEDBACK_SENT        "35935b3b2387469682250a7898835ab0"
#define MID_CREATES_PAUSED       "2ae56a26f92149b69a20c4fcdcabfd5c"
#define MID_API_RECOVERED        "fb13796a9f1249dba1c30a3d30bfdaf3"
