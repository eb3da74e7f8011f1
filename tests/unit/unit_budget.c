/* unit_budget.c — see unit_budget.h. */
#include "unit_budget.h"

const BudgetConfig unit_budget_config = {
	.limit_per_hour = 100,
	.poll_reserve = 10,
	.window = USEC_PER_HOUR,
	.interactive_per_uid = 5,
	.interactive_total = 20,
};
