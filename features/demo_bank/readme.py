"""The text of truth/README.md: every planted structure and how its truth is defined."""

TRUTH_README = """# Demo bank: planted truth

Everything here is what the simulator *knows*; none of it is in the data tables.
Simulation window 2024-01-01 .. 2026-01-01, monthly steps; suggested cut-off
DEMO_AS_OF = 2025-11-01 (horizon 60 days: [2025-11-01, 2025-12-31)). The data
after DEMO_AS_OF comes from the same forward process as before it. Same seed,
same bank. `meta.json` holds the seed, size, persona shares, realised churn rate,
funnel and campaign truth.

## Personas (customers.parquet: persona)
young_active_trader (~22%), conservative_saver (~28%), affluent_investor (~10%),
p2p_yield_seeker (~15%), casual_dabbler (~25%). Each has its own age, income
band, occupation, city tier, channel and assessed risk distributions, session
rate, deposit size, product preferences, decline hazard, complaint rate and
campaign response. ~10% of customers are not risk-assessed (they behave as
level 1-2, rarely 3: column eff_risk); ~8% opted out of marketing;
kyc_verified = reached real-name authentication. `qualified` (latent, only
affluent investors) gates qualified-only products.

## customers.parquet
customer_id, persona, activity_rate (sessions/day when healthy), decline_hazard
(monthly base), complaint_rate, deposit_scale, eff_risk, qualified,
state_at_as_of (healthy / declining / left / not_signed_up), churned_at (the
leave time; NaT if never), departed_at_as_of (contract: assets withdrawn to about
zero, no engagement since), active_at_as_of (contract: not departed, an engagement,
i.e. an event, deposit or buy, in the 90 days before), p_churn_true, churn_label
(the realised contract label), assets_at_as_of, assets_at_end.

## Churn
Monthly state machine: healthy -> declining with probability
1 - exp(-base * (1 + 1.2 * min(complaints in months m-3..m-2, 3)) * (1 + 1.5 * [portfolio
return of month m-2 < -4%])); declining -> left 40%/month (at a uniform time in the
month), -> healthy 8%/month. The session rate is halved for every month of decline,
complaints are 8x as frequent, buying drops to 30%, and declining customers sell
holdings (50% per product per month) and withdraw 70-100% of their cash in their
sessions. After leaving: no events, no transactions, no interactions. Exit style
(`meta.json` exit_style, `portrait demo-data --exit-style`): `silent` (default) leavers
just stop, holdings stay; `sellout` leavers sell every holding an hour after their leave
time and withdraw all cash a minute later (no session, no event), then stop.
Income is paid on quarter-end days (none inside the DEMO_AS_OF horizon).

p_churn_true = P(no engagement, i.e. no session: events, deposits and buys happen
only in sessions, in [DEMO_AS_OF, +60 days) | latent state at DEMO_AS_OF), for customers
active at DEMO_AS_OF (NaN otherwise; the same under both exit styles): 1 for
customers already gone; for the others, an exact forward computation over the
November and December transitions (the hazards only use complaints and returns
known at DEMO_AS_OF) with Poisson sessions and a uniform leave time; that is the
contract's churn label, not "leaves". Check: churn_label vs p_churn_true.

## Products and affinities (affinities.parquet)
25 products, 12 categories, risk 1-5 by category, 2 inactive (legacy, sold only
in 2024), 3 qualified-only. Monthly purchase chance of a product (given at least
one session that month) = persona preference x risk fit (1 at or below the
customer's level, 0.06 one above, 0.005 further) x affinity multiplier (holding
antecedent multiplies the chance to buy consequent, see the file) x 3 in a
"shopping" month and the month after x 0.3 when declining; capped at 0.9; held,
inactive and (for unqualified customers) qualified-only products are never bought.
Shopping customers view the credit_report page often, so a credit_report view
marks high intent. Each buy is preceded by 1-3 view_product events of the product
(70% with a product_detail page view) in the 3 days before (within the month),
and followed by invest_success (plus p2p_invest / forex_copy_follow).

## conversion.parquet
customer_id, product_id, p_buy_true for every customer active at DEMO_AS_OF and
every product not held then: per horizon month m, a_m = min(preference x risk fit
x affinity (holdings at DEMO_AS_OF) x E[intent boost], 0.9) x P(alive with a
session in m, x 0.3 if declining), from the same exact state forecast as churn;
p_buy_true = 1 - (1 - a_Nov)(1 - a_Dec). Approximation: holdings are frozen at
DEMO_AS_OF and the cap is applied to the expected boost.

## Funnel and A/B test
register -> real_name_auth (85%) -> bind_card (72% of authenticated) ->
invest_success (75% of card binders; the first investment, in the sign-up month;
only customers who made it trade later, so the funnel is about 100 -> 85 -> 61 -> 46%).
Customers registering 2025-03-01..2025-06-30 carry {"variant": "A"|"B"} on their
register event (50/50); bind_card given auth is 66% for A and 80% for B.

## Campaign (campaign.json, campaign_uplift.parquet)
CMP2025_FUND_PUSH, app_push on 2025-07-01 (09:00-19:00), product P07 (Balanced
Growth Mixed Fund, R3), to every consenting customer active (90 days) and not
gone at that date, 50/50 treatment/control. Outcome: buying P07 within 30 days.
Organic chance p_base by persona (x0.6 below risk level 3, 0 if already held);
treated customers not converting organically are persuaded with a persona
probability (affluent 30%, trader 20%, p2p 15%, dabbler 9%, saver 0%), so
true_uplift = (1 - p_base) x persuasion. campaign.json gives the expected base
rate, the true ATE (mean true_uplift over the population), the realised group
rates and the per-persona uplift.

## Balances and transactions
Month-end total_assets = cash + holdings; holdings earn monthly returns (drift +
beta x market + noise by product). deposit, withdraw, buy, sell (full position),
income (quarter-end yield on deposit, money market, bond, p2p products); all
amounts > 0.

## bad_rows.parquet
When bad_rows > 0, that fraction of extra, damaged copies of rows is inserted at
random positions in customers, transactions, events and interactions (tables
then are written as CSV): table, row_index (0-based data row in the written
file), kind (duplicate_customer_id, risk_level_out_of_range,
unparseable_timestamp = "not-a-date", unknown_customer_id, unknown_product_id =
"P99", negative_amount, bad_transaction_type = "refund"), customer_id.
"""
