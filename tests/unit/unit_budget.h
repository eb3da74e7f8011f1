/* unit_budget.h — the budget the unit tests of the ledger and of the planner
 * (test_budget.c, test_plan.c) start from: hitld's defaults for a 100-calls-
 * an-hour key (poll reserve 10, interactive 5 per uid and 20 in all), one
 * definition instead of a copy in each. */
#pragma once

#include "budget.h"

extern const BudgetConfig unit_budget_config;
