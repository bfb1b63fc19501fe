//! What the sites write, read as data: prices, Spanish dates, HTML descriptions, slugs.
//!
//! Pure functions, no browser: the site modules pull raw strings out of the pages and
//! everything that can be got wrong about them is decided and tested here. Dates are
//! wall-clock times in Uruguay (UTC−3 all year since 2015, so a fixed offset) and are
//! resolved against an injected "now", never the machine's clock.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use rust_decimal::Decimal;

/// Uruguay's offset from UTC.
pub(super) fn uruguay() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("a valid offset")
}

/// The first number in `text`, with the decimal mark told from thousands separators:
/// with both `.` and `,` the last one is the decimal mark; with one kind only, it
/// groups thousands when it occurs more than once or is followed by exactly three
/// digits. `"$ 1.190"` is 1190, `"2.450,50"` 2450.50, `"$ 690.0"` 690, `"0,00"` 0.
/// No digits, no price.
pub(super) fn price(text: &str) -> Option<Decimal> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let number: &str = {
        let rest = &text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .unwrap_or(rest.len());
        rest[..end].trim_end_matches(['.', ','])
    };
    let last_dot = number.rfind('.');
    let last_comma = number.rfind(',');
    let decimal_mark = match (last_dot, last_comma) {
        (Some(d), Some(c)) => Some(d.max(c)),
        (Some(at), None) | (None, Some(at)) => {
            let mark = number.as_bytes()[at] as char;
            let repeated = number.matches(mark).count() > 1;
            let grouped = number.len() - at - 1 == 3;
            (!repeated && !grouped).then_some(at)
        }
        (None, None) => None,
    };
    let digits: String = number
        .char_indices()
        .filter_map(|(i, c)| match c {
            '0'..='9' => Some(c),
            _ if Some(i) == decimal_mark => Some('.'),
            _ => None,
        })
        .collect();
    digits.parse().ok()
}

const MONTHS: [(&str, u32); 13] = [
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
];

pub(super) fn month(name: &str) -> Option<u32> {
    let name = name.trim().to_lowercase();
    MONTHS.iter().find(|(m, _)| *m == name).map(|(_, n)| *n)
}

/// Every "D de <mes>" in `text`, in order.
pub(super) fn day_months(text: &str) -> Vec<(u32, u32)> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words
        .windows(3)
        .filter_map(|w| {
            let day: u32 = w[0].parse().ok().filter(|d| (1..=31).contains(d))?;
            (w[1] == "de").then_some(())?;
            Some((day, month(&w[2])?))
        })
        .collect()
}

/// Every time of day in `text`: "23:30", "21 hs", "21hs", "9:05 hs".
pub(super) fn times(text: &str) -> Vec<NaiveTime> {
    let lower = text.to_lowercase();
    let bytes = lower.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let hour_end = (i..bytes.len())
            .find(|&j| !bytes[j].is_ascii_digit())
            .unwrap_or(bytes.len());
        let hour: Option<u32> = lower[i..hour_end]
            .parse()
            .ok()
            .filter(|h| *h < 24 && hour_end - i <= 2);
        let mut next = hour_end;
        let time = match hour {
            Some(h) if bytes.get(hour_end) == Some(&b':') => {
                let m_end = (hour_end + 1..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                next = m_end;
                lower[hour_end + 1..m_end]
                    .parse()
                    .ok()
                    .filter(|_| m_end - hour_end == 3)
                    .and_then(|m| NaiveTime::from_hms_opt(h, m, 0))
            }
            Some(h) if lower[hour_end..].trim_start().starts_with("hs") => {
                NaiveTime::from_hms_opt(h, 0, 0)
            }
            _ => None,
        };
        found.extend(time);
        i = next.max(i + 1);
    }
    found
}

/// A wall-clock time in Uruguay as an instant.
pub(super) fn at(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = NaiveDateTime::new(date, time);
    match uruguay().from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        // A fixed offset has no gaps or folds.
        _ => Utc.from_utc_datetime(&local),
    }
}

/// Today in Uruguay at `now`.
pub(super) fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&uruguay()).date_naive()
}

/// Day and month in `year`, if that date exists.
pub(super) fn date(year: i32, (day, month): (u32, u32)) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Day and month in this year, or next year's when this year's is before today
/// (RedTickets and Tickantel list only upcoming dates without a year).
pub(super) fn upcoming(now: DateTime<Utc>, day_month: (u32, u32)) -> Option<NaiveDate> {
    let today = today(now);
    let this_year = date(today.year(), day_month)?;
    if this_year < today {
        date(today.year() + 1, day_month)
    } else {
        Some(this_year)
    }
}

/// Entraste's dates: "Desde el <dow> D de <mes> a las HH:MM hasta el <dow> D de <mes> a
/// las HH:MM", "<dow> D de <mes> (desde) las HH:MM hasta las HH:MM" (ending after
/// midnight when the end is earlier), or "<dow> D de <mes> a las HH:MM" (ending 06:00
/// next day from 20:00 on, else six hours later). In this year, or next year's when
/// both start and end would be more than five days ago.
pub(super) fn entraste_dates(
    text: &str,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let days = day_months(text);
    let clock = times(text);
    let build = |year: i32| -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = date(year, *days.first()?)?;
        let start_time = *clock.first()?;
        let start = at(first, start_time);
        let end = if days.len() >= 2 && clock.len() >= 2 {
            let mut last = date(year, days[1])?;
            if last < first {
                last = date(year + 1, days[1])?;
            }
            at(last, clock[1])
        } else if clock.len() >= 2 {
            let end = at(first, clock[1]);
            if end <= start {
                end + Duration::days(1)
            } else {
                end
            }
        } else if start_time.hour() >= 20 {
            at(first.succ_opt()?, NaiveTime::from_hms_opt(6, 0, 0)?)
        } else {
            start + Duration::hours(6)
        };
        Some((start, end))
    };
    let year = today(now).year();
    let (start, end) = build(year)?;
    let stale = now - Duration::days(5);
    if start < stale && end < stale {
        build(year + 1)
    } else {
        Some((start, end))
    }
}

/// HTML to readable text: `<br>` and the ends of block elements become line breaks,
/// other tags vanish, entities are decoded (`&amp;` last, so `&amp;lt;` stays `&lt;`),
/// three or more line breaks become one blank line, lines are trimmed. Empty is `None`.
pub(super) fn html_to_text(html: &str) -> Option<String> {
    const BLOCKS: [&str; 20] = [
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "section",
        "article",
        "blockquote",
        "header",
        "footer",
        "pre",
        "br",
    ];
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = &rest[open + 1..open + close];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name == "br" || (closing && BLOCKS.contains(&name.as_str())) {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    let lines: Vec<&str> = decoded.lines().map(str::trim).collect();
    let mut text = String::new();
    let mut blank_run = 0;
    for line in lines {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank_run >= 2 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        text.push_str(line);
    }
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let entity = after.find(';').filter(|&n| n <= 8).map(|n| &after[..n]);
        let decoded = entity.and_then(|name| match name {
            "nbsp" => Some(' '),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "#39" | "apos" => Some('\''),
            "amp" => Some('&'),
            _ => name
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32),
        });
        match (entity, decoded) {
            (Some(name), Some(c)) => {
                out.push(c);
                rest = &after[name.len() + 1..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lowercase ASCII words joined by dashes: "Fiesta de Verano 2026-11-28" becomes
/// "fiesta-de-verano-2026-11-28"; Spanish accents are dropped, not the letters.
pub(super) fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut dash = false;
    for c in text.to_lowercase().chars() {
        let c = match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c);
        } else {
            dash = true;
        }
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn prices_tell_decimal_marks_from_thousands_separators() {
        for (text, expected) in [
            ("$ 1.190", "1190"),
            ("$1,190", "1190"),
            ("1.500.000", "1500000"),
            ("2.450,50", "2450.50"),
            ("1,190.50", "1190.50"),
            ("$ 690.0", "690"),
            ("$ 2630.0", "2630"),
            ("1250.5", "1250.5"),
            ("0,00", "0"),
            ("0", "0"),
            ("General ($ 1.190) 10 disponibles", "1190"),
            ("US$ 45", "45"),
        ] {
            assert_eq!(price(text), Some(d(expected)), "{text}");
        }
        assert_eq!(price("Consultar"), None);
        assert_eq!(price(""), None);
    }

    #[test]
    fn times_are_found_in_both_spellings() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(
            times("desde las 23:00 hasta las 05:00"),
            vec![t(23, 0), t(5, 0)]
        );
        assert_eq!(times("Sábado 28 de Noviembre - 21 hs"), vec![t(21, 0)]);
        assert_eq!(times("- 23:30 hs"), vec![t(23, 30)]);
        assert_eq!(times("2026 y 99:99"), vec![]);
    }

    #[test]
    fn entraste_dates_cover_every_form_and_roll_into_next_year() {
        let now = "2026-11-25T18:00:00Z".parse().unwrap();
        let iso = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            entraste_dates(
                "Sábado 28 de noviembre desde las 23:00 hasta las 05:00",
                now
            ),
            Some((
                iso("2026-11-28T23:00:00-03:00"),
                iso("2026-11-29T05:00:00-03:00")
            ))
        );
        assert_eq!(
            entraste_dates("Viernes 4 de diciembre a las 21:00", now),
            Some((
                iso("2026-12-04T21:00:00-03:00"),
                iso("2026-12-05T06:00:00-03:00")
            ))
        );
        assert_eq!(
            entraste_dates("Martes 1 de diciembre a las 18:00", now),
            Some((
                iso("2026-12-01T18:00:00-03:00"),
                iso("2026-12-02T00:00:00-03:00")
            ))
        );
        assert_eq!(
            entraste_dates(
                "Desde el viernes 15 de enero a las 20:00 hasta el domingo 17 de enero a las 04:00",
                now
            ),
            Some((
                iso("2027-01-15T20:00:00-03:00"),
                iso("2027-01-17T04:00:00-03:00")
            ))
        );
        // Within five days: still this year, and past.
        assert_eq!(
            entraste_dates("Sábado 21 de noviembre a las 23:00", now),
            Some((
                iso("2026-11-21T23:00:00-03:00"),
                iso("2026-11-22T06:00:00-03:00")
            ))
        );
        assert_eq!(entraste_dates("Próximamente", now), None);
        assert_eq!(entraste_dates("31 de febrero a las 20:00", now), None);
    }

    #[test]
    fn html_becomes_text_with_block_breaks_and_entities() {
        assert_eq!(
            html_to_text(
                "Hola <strong>Club</strong>.<br>Line-up: A &amp; B<br/><br><br><br>Fin &amp;lt;3&nbsp;"
            ),
            Some("Hola Club.\nLine-up: A & B\n\nFin &lt;3".to_string())
        );
        assert_eq!(
            html_to_text("<ul><li>Uno</li><li>Dos</li></ul>"),
            Some("Uno\nDos".to_string())
        );
        assert_eq!(html_to_text("  <p> </p> "), None);
    }

    #[test]
    fn slugs_are_ascii_words_joined_by_dashes() {
        assert_eq!(
            slugify("Fiesta de Verano 2026-11-28"),
            "fiesta-de-verano-2026-11-28"
        );
        assert_eq!(
            slugify("¡Año Nuevo en el Náutico! "),
            "ano-nuevo-en-el-nautico"
        );
        assert_eq!(slugify("--"), "");
    }
}
