/* uidshare.c — see uidshare.h. */
#include "uidshare.h"

static bool unlimited(const ShareRate *rate) {
	return rate->percent >= 100;
}

void uidshare_init(UidShare *u, uid_t uid, const ShareRate *rate, usec_t now) {
	*u = (UidShare) { .uid = uid, .credit = (int64_t) rate->burst, .updated = now };
}

void uidshare_refill(UidShare *u, const ShareRate *rate, usec_t now) {
	uint64_t gain;

	if (now <= u->updated)
		return;
	/* Saturates long before overflow: a refill after a long quiet spell only
	 * needs to know that the bucket is full. */
	gain = now - u->updated > rate->burst * 200 ? rate->burst * 2 : (now - u->updated) * rate->percent / 100;
	u->credit = u->credit + (int64_t) gain > (int64_t) rate->burst ? (int64_t) rate->burst : u->credit + (int64_t) gain;
	u->updated = now;
}

bool uidshare_may_dispatch(UidShare *u, const ShareRate *rate, usec_t now) {
	if (unlimited(rate))
		return true;
	uidshare_refill(u, rate, now);
	return u->credit > 0;
}

void uidshare_charge(UidShare *u, const ShareRate *rate, usec_t spent) {
	if (unlimited(rate))
		return;
	/* One call's overshoot is bounded by what one call can cost; keep the
	 * debt at most a second of the share so a stall (swap, SIGSTOP) is
	 * forgiven soon. */
	u->credit -= (int64_t) spent;
	if (u->credit < -(int64_t) (rate->percent * 10000))
		u->credit = -(int64_t) (rate->percent * 10000);
}

usec_t uidshare_ready_at(const UidShare *u, const ShareRate *rate, usec_t now) {
	if (unlimited(rate) || u->credit > 0 || rate->percent == 0)
		return now;
	/* Until the credit is back above zero (one usec of it). */
	return u->updated + ((uint64_t) (-u->credit) + 1) * 100 / rate->percent + 1;
}
