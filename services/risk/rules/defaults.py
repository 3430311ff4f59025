"""The rule set a new installation starts with (version 1, live)."""

from __future__ import annotations

from services.risk.rules.engine import Rule

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "single_amount_limit",
        "amount_minor >= 5000000",
        0.5,
        "transaction",
        "amount at or above the single-transaction limit (50,000.00)",
    ),
    Rule(
        "daily_amount_limit",
        "amount_1d + amount_minor > 10000000",
        0.4,
        "transaction",
        "the day's total would pass the daily limit (100,000.00)",
    ),
    Rule("velocity_1h", "count_1h >= 5", 0.35, "behaviour", "five or more transactions in the past hour"),
    Rule(
        "new_payee",
        "new_payee && !payee_allowed && count_30d > 0",
        0.15,
        "behaviour",
        "a payee this customer never paid before",
    ),
    Rule(
        "new_payee_large",
        "new_payee && !payee_allowed && amount_minor >= 1000000",
        0.25,
        "behaviour",
        "10,000.00 or more to a new payee",
    ),
    Rule(
        "new_device",
        'device_id != "" && new_device && !device_allowed && count_30d > 0',
        0.2,
        "account",
        "a device this customer never used before",
    ),
    Rule(
        "unusual_region",
        'region != "" && new_region && count_30d > 0',
        0.2,
        "behaviour",
        "a region this customer never transacted from",
    ),
    Rule(
        "impossible_travel",
        'region != "" && prev_region != "" && prev_region != region && prev_minutes_ago >= 0.0 '
        "&& prev_minutes_ago < 60.0",
        0.4,
        "account",
        "another region less than an hour before",
    ),
    Rule(
        "login_elsewhere",
        'login_region != "" && region != "" && login_region != region',
        0.5,
        "account",
        "R-II.2.2: signed in from another place within 15 minutes",
        min_decision="step_up",
    ),
    Rule("crypto_withdrawal", 'kind == "crypto_withdrawal"', 0.3, "transaction", "a crypto-currency withdrawal"),
    Rule("recent_failures", "recent_failures >= 3", 0.3, "account", "repeated recent failed sign-ins or declines"),
    Rule(
        "far_above_usual",
        "count_30d >= 5 && double(amount_minor) > avg_amount_30d * 10.0",
        0.3,
        "behaviour",
        "ten times the customer's usual amount",
    ),
    Rule(
        "unusual_hour", "count_30d >= 20 && !usual_hour", 0.1, "behaviour", "an hour this customer never transacts at"
    ),
    Rule("payee_fraud", "payee_fraud_30d > 0", 0.6, "transaction", "the payee received confirmed fraud recently"),
    Rule("customer_fraud", "customer_fraud_count > 0", 0.3, "account", "the customer had confirmed fraud before"),
    Rule("blocked_payee", "payee_blocked", 0.75, "transaction", "the payee is on the block list"),
    Rule("phishing_payee", "payee_phishing", 0.75, "transaction", "the payee's domain is a known phishing domain"),
    Rule("blocked_device", "device_blocked", 0.75, "account", "the device is on the block list"),
    Rule("blocked_ip", "ip_blocked", 0.75, "account", "the IP address is on the block list"),
    Rule(
        "high_risk_account",
        'risk_level == "high"',
        0.2,
        "account",
        "the account's risk level is high",
        min_decision="step_up",
    ),
)
