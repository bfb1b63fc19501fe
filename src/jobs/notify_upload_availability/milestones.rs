//! Which reminder, if any, a listing is due for, by the hours left before its event.
//!
//! The original's rule (apps/backend/src/cronjobs/notify-upload-availability.ts):
//! milestones 72, 48, 24, 12, 6, 3, 2 and 1 hours before the start, each a band of
//! ±0.5 h, searched from the largest, skipping milestones earlier than the event's QR
//! window (the documents do not exist before it). When no band is hit but the event is
//! already inside its QR window (a listing created late, a run missed), the catch-up
//! rule picks the largest milestone inside the window that is still ahead.

/// Hours before the start at which a seller is reminded, largest first.
pub const MILESTONES: [u32; 8] = [72, 48, 24, 12, 6, 3, 2, 1];

/// The milestone a listing is due for `hours` before its event, with the event's QR
/// window (`qr_availability_timing`, in hours; `None`: no restriction).
pub fn due(hours: f64, qr_window: Option<u32>) -> Option<u32> {
    if hours <= 0.0 {
        return None;
    }
    let allowed = MILESTONES
        .into_iter()
        .filter(|m| qr_window.is_none_or(|q| *m <= q));
    if let Some(m) = allowed
        .clone()
        .find(|m| (f64::from(*m) - 0.5..=f64::from(*m) + 0.5).contains(&hours))
    {
        return Some(m);
    }
    let window = qr_window?;
    if hours > f64::from(window) {
        return None;
    }
    allowed.into_iter().find(|m| hours < f64::from(*m) - 0.5)
}

/// `'12h'` as 12.
pub(super) fn qr_hours(timing: Option<&str>) -> Option<u32> {
    timing?.trim_end_matches('h').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_milestone_is_a_band_of_half_an_hour() {
        for (hours, expected) in [
            (72.4, Some(72)),
            (71.5, Some(72)),
            (71.4, None),
            (48.0, Some(48)),
            (24.5, Some(24)),
            (12.2, Some(12)),
            (6.0, Some(6)),
            (3.1, Some(3)),
            (2.5, Some(3)),
            (2.2, Some(2)),
            (1.0, Some(1)),
            (0.4, None),
            (5.0, None),
            (30.0, None),
            (-1.0, None),
        ] {
            assert_eq!(due(hours, None), expected, "{hours} h, no QR window");
        }
    }

    #[test]
    fn milestones_before_the_qr_window_are_skipped() {
        assert_eq!(due(72.0, Some(48)), None);
        assert_eq!(due(48.0, Some(48)), Some(48));
        assert_eq!(due(24.0, Some(12)), None);
    }

    #[test]
    fn inside_the_qr_window_the_largest_milestone_still_ahead_is_caught_up() {
        // The original's own examples.
        assert_eq!(due(5.0, Some(12)), Some(12));
        assert_eq!(due(4.338, Some(6)), Some(6));
        assert_eq!(due(4.5, Some(24)), Some(24));
        assert_eq!(due(0.3, Some(6)), Some(6));
        // A band still wins inside the window.
        assert_eq!(due(3.0, Some(6)), Some(3));
        // Outside the window there is nothing to catch up.
        assert_eq!(due(30.0, Some(24)), None);
    }

    #[test]
    fn qr_timings_read_as_hours() {
        assert_eq!(qr_hours(Some("12h")), Some(12));
        assert_eq!(qr_hours(None), None);
        assert_eq!(qr_hours(Some("soon")), None);
    }
}
