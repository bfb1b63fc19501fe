//! Money arithmetic of the marketplace: seller earnings and the exchange rate.
//!
//! The original rounds every step to two decimals half-up (`Math.round(x * 100) / 100`)
//! on binary floats. We keep the same steps on exact decimals, so a price whose
//! commission lands exactly on half a cent rounds up, as the original intends, instead
//! of down by a float error (12.25 × 6 % = 0.735 → 0.74, where the float gives 0.73).

use rust_decimal::{Decimal, RoundingStrategy};

use crate::config::{self, Env};

/// Rates that decide what a seller gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Platform commission on the ticket price. Defaults to 0.06.
    pub commission: Decimal,
    /// VAT on the commission. Defaults to 0.22.
    pub vat: Decimal,
}

impl Rates {
    pub const DEFAULT: Rates = Rates {
        commission: Decimal::from_parts(6, 0, 0, false, 2),
        vat: Decimal::from_parts(22, 0, 0, false, 2),
    };
}

impl Rates {
    /// `PLATFORM_COMMISSION_RATE` and `VAT_RATE` (each 0 to 1), the defaults when unset.
    pub fn from_env(env: &Env) -> Result<Rates, config::Error> {
        let rate = |name, default| config::parse(env, name, default, Decimal::ZERO..=Decimal::ONE);
        Ok(Rates {
            commission: rate("PLATFORM_COMMISSION_RATE", Rates::DEFAULT.commission)?,
            vat: rate("VAT_RATE", Rates::DEFAULT.vat)?,
        })
    }
}

/// Two decimals, half away from zero (= JS `Math.round` for positive amounts).
pub fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// What the seller of a ticket sold at `price` earns: price minus the rounded
/// commission and the rounded VAT on it.
pub fn seller_amount(price: Decimal, rates: Rates) -> Decimal {
    let (commission, vat) = commission(price, rates);
    let deductions = round2(commission + vat);
    round2(price - deductions)
}

/// The platform's commission on a ticket sold at `price`, and the VAT on it, each
/// rounded: what the seller's invoice bills for that ticket.
pub fn commission(price: Decimal, rates: Rates) -> (Decimal, Decimal) {
    let commission = round2(price * rates.commission);
    (commission, round2(commission * rates.vat))
}

/// `(balance_amount + balance_fee) / amount` when the payment settled in another
/// currency (a USD order settled in UYU), as the original stores it.
pub fn exchange_rate(
    amount: Decimal,
    currency: &str,
    balance_amount: Option<Decimal>,
    balance_fee: Option<Decimal>,
    balance_currency: Option<&str>,
) -> Option<Decimal> {
    let (balance, fee, settled) = (balance_amount?, balance_fee?, balance_currency?);
    if settled == currency || amount.is_zero() {
        return None;
    }
    let rate = balance.checked_add(fee)?.checked_div(amount)?.round_dp(8);
    // The column is numeric(18,8): a rate it cannot hold is nonsense from the provider,
    // and writing it would fail the whole batch.
    (rate.abs() < Decimal::from(10_000_000_000i64)).then_some(rate)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn seller_amounts_follow_the_original_steps() {
        // price → commission (6 %) → VAT (22 % of it) → seller amount
        for (price, expected) in [
            ("100", "92.68"),       // 6.00 + 1.32 = 7.32
            ("1000", "926.80"),     // 60.00 + 13.20
            ("12.25", "11.35"),     // 0.735 → 0.74; 0.1628 → 0.16; 0.90
            ("1.99", "1.84"),       // 0.1194 → 0.12; 0.0264 → 0.03; 0.15
            ("0.01", "0.01"),       // commission rounds to 0
            ("2500.50", "2317.46"), // 150.03 + 33.0066→33.01 = 183.04
            ("45.83", "42.47"),     // 2.7498→2.75; 0.605→0.61; 3.36
        ] {
            assert_eq!(
                seller_amount(d(price), Rates::DEFAULT),
                d(expected),
                "price {price}"
            );
        }
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(round2(d("0.735")), d("0.74"));
        assert_eq!(round2(d("0.605")), d("0.61"));
        assert_eq!(round2(d("0.7349")), d("0.73"));
    }

    #[test]
    fn exchange_rate_only_across_currencies() {
        assert_eq!(
            exchange_rate(d("10"), "USD", Some(d("400")), Some(d("10")), Some("UYU")),
            Some(d("41"))
        );
        assert_eq!(
            exchange_rate(d("10"), "UYU", Some(d("9")), Some(d("1")), Some("UYU")),
            None
        );
        assert_eq!(
            exchange_rate(d("10"), "USD", None, Some(d("1")), Some("UYU")),
            None
        );
    }
}
