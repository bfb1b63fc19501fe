//! Money arithmetic of the marketplace: seller earnings, invoice lines and the
//! exchange rate.
//!
//! The marketplace's API computes the same fees with the original's code
//! (packages/shared/src/utils/fees.ts: every step `Math.round(Number(x) * 100) / 100` on
//! binary doubles), and shows sellers those figures. What we write must be what the API
//! shows, to the cent, so fees are computed the same way, on doubles: 20.75 × 6 % is
//! 1.2449999… as a double and rounds to 1.24, as the API says, not to the exact 1.25. The
//! results are exact decimals again (the shortest decimal that reads back as the
//! double, as JavaScript's `String(n)` writes it) before they reach a row or an email.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
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

/// Two decimals, half away from zero, on exact decimals: for sums of amounts that
/// already have two decimals, where doubles and decimals agree.
pub(crate) fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A seller's side of one ticket sold at a price, as the API computes it
/// (`calculateSellerAmount`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SellerFees {
    /// The platform's commission on the price.
    pub commission: Decimal,
    /// The VAT on that commission.
    pub vat: Decimal,
    /// What the seller earns: the price less both.
    pub seller_amount: Decimal,
}

/// The seller's fees on a ticket sold at `price`, step by step as the API rounds them.
pub(crate) fn seller_fees(price: Decimal, rates: Rates) -> SellerFees {
    let (commission_rate, vat_rate) = (double(rates.commission), double(rates.vat));
    let price = js_round2(double(price));
    let commission = js_round2(price * commission_rate);
    let vat = js_round2(commission * vat_rate);
    let deductions = js_round2(commission + vat);
    SellerFees {
        commission: decimal(commission),
        vat: decimal(vat),
        seller_amount: decimal(js_round2(price - deductions)),
    }
}

/// What the seller of a ticket sold at `price` earns.
pub(crate) fn seller_amount(price: Decimal, rates: Rates) -> Decimal {
    seller_fees(price, rates).seller_amount
}

/// `Math.round(x * 100) / 100`: JavaScript's `Math.round` takes an exact half up
/// (towards +∞), whatever the sign.
fn js_round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    let floor = scaled.floor();
    let rounded = if scaled - floor >= 0.5 {
        floor + 1.0
    } else {
        floor
    };
    rounded / 100.0
}

/// `Number(x)`: the nearest double to the decimal, as JavaScript parses its text.
fn double(x: Decimal) -> f64 {
    f64::from_str(&x.to_string())
        .ok()
        .or_else(|| x.to_f64())
        .unwrap_or(f64::NAN)
}

/// The decimal JavaScript's `String(n)` writes for a double (Rust's `Display` for
/// `f64` is the same shortest round-trip form). A value no decimal can hold (NaN,
/// infinite: not a price) becomes zero rather than a panic; prices are bounded long
/// before that by their column.
fn decimal(x: f64) -> Decimal {
    Decimal::from_str(&x.to_string()).unwrap_or(Decimal::ZERO)
}

/// `(balance_amount + balance_fee) / amount` when the payment settled in another
/// currency (a USD order settled in UYU), as the original stores it.
pub(crate) fn exchange_rate(
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
    fn seller_amounts_are_the_apis_to_the_cent() {
        // price → (commission, VAT, seller amount) as node 20 prints
        // calculateSellerAmount(price, {0.06, 0.22}) of packages/shared/src/utils/fees.ts.
        for (price, commission, vat, seller) in [
            ("100", "6", "1.32", "92.68"),
            ("1000", "60", "13.2", "926.8"),
            ("12.25", "0.74", "0.16", "11.35"),
            ("1.99", "0.12", "0.03", "1.84"),
            ("0.01", "0", "0", "0.01"),
            ("2500.50", "150.03", "33.01", "2317.46"),
            ("45.83", "2.75", "0.61", "42.47"),
            // The half-cent cases where doubles and exact decimals part: the API's
            // figure, not the exact one (1.25; 8.75 and 614.00).
            ("20.75", "1.24", "0.27", "19.24"),
            ("662.50", "39.75", "8.74", "614.01"),
            // USD-sized prices with cents: 0.165 and 1.005 as doubles fall below the half.
            ("2.75", "0.16", "0.04", "2.55"),
            ("16.75", "1", "0.22", "15.53"),
        ] {
            let fees = seller_fees(d(price), Rates::DEFAULT);
            assert_eq!(
                (fees.commission, fees.vat, fees.seller_amount),
                (d(commission), d(vat), d(seller)),
                "price {price}"
            );
        }
    }

    #[test]
    fn every_price_where_doubles_and_decimals_part_gives_the_apis_figures() {
        // Written by node from the API's own arithmetic (the .js beside the file): all 443
        // prices up to 1000.00 where exact half-up decimals would differ by a cent.
        let table = include_str!("../tests/fixtures/money/js-seller-fees.csv");
        let mut rows = 0;
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let fees = seller_fees(d(f[0]), Rates::DEFAULT);
            assert_eq!(
                (fees.commission, fees.vat, fees.seller_amount),
                (d(f[1]), d(f[2]), d(f[3])),
                "price {}",
                f[0]
            );
            rows += 1;
        }
        assert_eq!(rows, 443);
    }

    #[test]
    fn javascript_rounding_takes_an_exact_half_up_and_a_double_below_it_down() {
        assert_eq!(js_round2(0.735), 0.74, "0.735 × 100 is exactly 73.5");
        assert_eq!(js_round2(20.75 * 0.06), 1.24, "1.2449999999999999");
        assert_eq!(js_round2(-0.005), -0.0, "Math.round(-0.5) is -0");
        assert_eq!(js_round2(1277.108), 1277.11);
    }

    #[test]
    fn rounding_of_exact_sums_is_half_up() {
        assert_eq!(round2(d("0.735")), d("0.74"));
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
