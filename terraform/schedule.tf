# How long each job may go without a run before the missed-run alarm (monitoring.tf)
# fires, derived from its declared schedule so that no window is written by hand.
#
# gap    = the longest time between two consecutive fires of the schedule
# window = max(2 × gap, 600 s): one fire may come late or its run end late (the run's
#          metrics land when it ends) without an alarm, and CloudWatch's ingestion
#          delay and the EMF timestamp never make a 2-minute job look missed.
#
# Read here: rate(N minute[s]|hour[s]|day[s]), and cron() whose minutes and hours are
# lists of `*`, `a`, `a-b` (wrapping: hours 20-2), `*/n`, `a/n`, `a-b/n`, that fires
# every day (day-of-month `*`/`?` and day-of-week `?`/`*`) or on a set of weekdays
# (day-of-month `?`, day-of-week 1-7 or SUN-SAT, ranges wrapping: FRI-MON), with month
# `*`. The year field is ignored. Everything else (a restricted day-of-month or month,
# L, W, #) gets no window: its gaps depend on the calendar, which HCL cannot walk.
# Times are UTC, as EventBridge rules are; with use_scheduler and a zone that keeps
# daylight saving time, a gap across a clock change can be an hour longer (absorbed by
# the doubled window when the gap is an hour or more).
#
# CloudWatch alarms evaluate at most 7 days (period × evaluation periods ≤ 604,800 s,
# ≤ 86,400 s when the period is under an hour; periods are multiples of 60 s). A window
# up to a day is one period (rounded up to the minute); a longer one is whole days,
# rounded up, each of which must have no run for the alarm to fire; longer than 7 days
# gets no alarm. Jobs without an alarm are in the output jobs_without_missed_run_alarm.

locals {
  # [[minutes, hours, day-of-month, month, day-of-week, year]], or [] for a rate.
  schedule_cron = {
    for name, j in local.jobs :
    name => regexall("^cron\\(\\s*(\\S+)\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)\\s*\\)$", j.schedule)
  }
  # [[N, unit]], or [] for a cron.
  schedule_rate = {
    for name, j in local.jobs :
    name => regexall("^rate\\(\\s*(\\d+)\\s+(minute|hour|day)s?\\s*\\)$", j.schedule)
  }
  rate_unit_seconds = { minute = 60, hour = 3600, day = 86400 }

  # Which cron day fields are read here: month `*`, and every day or weekdays only.
  cron_day_fields_readable = {
    for name, m in local.schedule_cron : name => try(m[0][3] == "*" && (
      contains(["*", "?"], m[0][2]) && contains(["*", "?"], m[0][4]) ||
      m[0][2] == "?" && length(regexall("[L#]", upper(m[0][4]))) == 0
    ), false)
  }
  # The days a readable cron fires on as a day-of-week field of numbers (1 = SUN), "*"
  # for every day.
  cron_days = {
    for name, m in local.schedule_cron : name => (
      contains(["*", "?"], m[0][2]) && contains(["*", "?"], m[0][4]) ? "*" :
      replace(replace(replace(replace(replace(replace(replace(upper(m[0][4]),
      "SUN", "1"), "MON", "2"), "TUE", "3"), "WED", "4"), "THU", "5"), "FRI", "6"), "SAT", "7")
    ) if local.cron_day_fields_readable[name]
  }

  # The three fields to expand, one entry per job and field, each with its cycle.
  cron_fields = merge({}, [
    for name, days in local.cron_days : {
      "${name}/minute" = { text = local.schedule_cron[name][0][0], lo = 0, size = 60 }
      "${name}/hour"   = { text = local.schedule_cron[name][0][1], lo = 0, size = 24 }
      "${name}/day"    = { text = days, lo = 1, size = 7 }
    }
  ]...)

  # Each comma-separated element as start, cyclic span (20-2 spans 7 hours; a/n runs to
  # the field's top) and step; null when it does not parse.
  cron_elements = {
    for key, f in local.cron_fields : key => [
      for e in split(",", f.text) : try([
        for p in [regex("^(\\*|\\d+)(?:-(\\d+))?(?:/(\\d+))?$", e)] : {
          start = p[0] == "*" ? f.lo : tonumber(p[0])
          end   = p[1] == null ? null : tonumber(p[1])
          step  = p[2] == null ? 1 : tonumber(p[2])
          span = (
            p[1] != null ? (tonumber(p[1]) - tonumber(p[0]) + f.size) % f.size + 1 :
            p[0] == "*" ? f.size :
            p[2] != null ? f.lo + f.size - tonumber(p[0]) : 1
          )
        }
      ][0], null)
    ]
  }

  # The sorted values of each field, or null when an element is unreadable or out of
  # range. sort() sorts strings: zero-padded, then back to numbers.
  cron_values = {
    for key, els in local.cron_elements : key => (
      alltrue([
        for el in els : try(
          el.start >= local.cron_fields[key].lo && el.start < local.cron_fields[key].lo + local.cron_fields[key].size &&
          (el.end == null ? true : el.end >= local.cron_fields[key].lo && el.end < local.cron_fields[key].lo + local.cron_fields[key].size) &&
          el.step >= 1,
          false
        )
      ])
      ? [
        for v in sort(distinct(flatten([
          for el in els : [
            for k in range(0, el.span, el.step) :
            format("%04d", local.cron_fields[key].lo + (el.start - local.cron_fields[key].lo + k) % local.cron_fields[key].size)
          ]
        ]))) : tonumber(v)
      ]
      : null
    )
  }

  # The longest gap, from the sorted hours H and minutes M of a fire day (its fire
  # times are every h*60+m) and D, the largest cyclic gap in days between fire days
  # (1: every day; MON-FRI: 3, Friday to Monday). Gaps between consecutive fire times
  # are: within an hour, between consecutive minutes; from one fire hour to the next,
  # Δh*60 - last(M) + first(M); from the day's last fire to the next fire day's first,
  # D*1440 - (last(H)*60 + last(M)) + first(H)*60 + first(M). The same as sorting all
  # |H|×|M| times, without building them (tfparse takes seconds over 1,440 per job).
  cron_readable = {
    for name, _ in local.cron_days : name => {
      minutes = local.cron_values["${name}/minute"]
      hours   = local.cron_values["${name}/hour"]
      days    = local.cron_values["${name}/day"]
    } if alltrue([for f in ["minute", "hour", "day"] : local.cron_values["${name}/${f}"] != null])
  }
  # (next - this + 6) % 7 + 1 is the days from one fire day to the next, 7 for one day.
  cron_day_gap = {
    for name, c in local.cron_readable : name => max([for i, d in c.days : (c.days[(i + 1) % length(c.days)] - d + 6) % 7 + 1]...)
  }
  cron_gap_minutes = {
    for name, c in local.cron_readable : name => max(concat(
      [for i in range(1, length(c.minutes)) : c.minutes[i] - c.minutes[i - 1]],
      [for i in range(1, length(c.hours)) : (c.hours[i] - c.hours[i - 1]) * 60 - c.minutes[length(c.minutes) - 1] + c.minutes[0]],
      [local.cron_day_gap[name] * 1440 - (c.hours[length(c.hours) - 1] * 60 + c.minutes[length(c.minutes) - 1]) + c.hours[0] * 60 + c.minutes[0]],
    )...)
  }

  schedule_gap_seconds = merge(
    { for name, r in local.schedule_rate : name => tonumber(r[0][0]) * local.rate_unit_seconds[r[0][1]] if length(r) > 0 },
    { for name, g in local.cron_gap_minutes : name => g * 60 },
  )

  # The shortest gap in minutes, from the same parsed fields and the same three kinds of
  # gap (the least of each instead of the largest): the tick period of a shared task
  # (tick.tf) is the least of its members'. A rate's gap is its interval.
  cron_day_gap_least = {
    for name, c in local.cron_readable : name => min([for i, d in c.days : (c.days[(i + 1) % length(c.days)] - d + 6) % 7 + 1]...)
  }
  cron_least_gap_minutes = {
    for name, c in local.cron_readable : name => min(concat(
      [for i in range(1, length(c.minutes)) : c.minutes[i] - c.minutes[i - 1]],
      [for i in range(1, length(c.hours)) : (c.hours[i] - c.hours[i - 1]) * 60 - c.minutes[length(c.minutes) - 1] + c.minutes[0]],
      [local.cron_day_gap_least[name] * 1440 - (c.hours[length(c.hours) - 1] * 60 + c.minutes[length(c.minutes) - 1]) + c.hours[0] * 60 + c.minutes[0]],
    )...)
  }
  schedule_least_gap_minutes = merge(
    { for name, r in local.schedule_rate : name => tonumber(r[0][0]) * local.rate_unit_seconds[r[0][1]] / 60 if length(r) > 0 },
    local.cron_least_gap_minutes,
  )

  missed_run_window = { for name, gap in local.schedule_gap_seconds : name => max(2 * gap, 600) }

  # Enabled jobs whose window CloudWatch can evaluate: period and evaluation periods.
  missed_run_alarms = {
    for name, w in local.missed_run_window : name => {
      gap                = local.schedule_gap_seconds[name]
      window             = w
      period             = w <= 86400 ? ceil(w / 60) * 60 : 86400
      evaluation_periods = w <= 86400 ? 1 : ceil(w / 86400)
    } if local.jobs[name].enabled && w <= 604800
  }

  jobs_without_missed_run_alarm = {
    for name, j in local.jobs : name => (
      !j.enabled ? "disabled (enabled: false): it is not expected to run" :
      contains(keys(local.missed_run_window), name) ? "the window (${local.missed_run_window[name]} s, twice the schedule's longest gap) exceeds the 604,800 s (7 days) a CloudWatch alarm can evaluate" :
      contains(keys(local.cron_days), name) ? "its minutes, hours or day-of-week field could not be read" :
      length(local.schedule_cron[name]) > 0 ? "day-of-month/month/L/W/# schedules are not supported by the missed-run alarm" :
      "not a rate() or cron() expression the missed-run alarm can read"
    ) if !contains(keys(local.missed_run_alarms), name)
  }
}
