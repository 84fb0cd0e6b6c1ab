//! Numbers as a person writes them on the page.

pub(super) fn fmt_pct(share: f64) -> String {
    let pct = share * 100.0;
    if share == 0.0 {
        "0%".to_owned()
    } else if pct < 0.1 {
        "<0.1%".to_owned()
    } else if pct >= 10.0 || (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

pub(super) fn opt_pct(share: Option<f64>) -> String {
    share.map_or("–".into(), fmt_pct)
}

pub(super) fn fmt_psi(psi: f64) -> String {
    if (psi * 100.0 - (psi * 100.0).round()).abs() < 1e-9 {
        // A round threshold (0.25, 0.1) reads better without trailing zeros.
        format!("{}", (psi * 100.0).round() / 100.0)
    } else if psi >= 10.0 {
        format!("{psi:.1}")
    } else if psi >= 1.0 {
        format!("{psi:.2}")
    } else {
        format!("{psi:.3}")
    }
}

/// Four significant digits, no exponent for the magnitudes of measurements.
pub(super) fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if magnitude >= 3 {
        thousands(x.round() as u64)
    } else if magnitude < -6 {
        format!("{x:.3e}")
    } else {
        let decimals = (3 - magnitude).max(0) as usize;
        let s = format!("{x:.decimals$}");
        // 4 significant digits may end in zeros: 20.00 -> 20
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    }
}

pub(super) fn opt_num(x: Option<f64>) -> String {
    x.map_or("–".into(), fmt_num)
}

pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(fmt_num(0.020289999432861805), "0.02029");
        assert_eq!(fmt_num(515.26), "515.3");
        assert_eq!(fmt_num(1717.0), "1,717");
        assert_eq!(fmt_num(20.0), "20");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_pct(0.0), "0%");
        assert_eq!(fmt_pct(0.123), "12%");
        assert_eq!(fmt_pct(0.0123), "1.2%");
        assert_eq!(fmt_pct(0.00001), "<0.1%");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(fmt_psi(0.41234), "0.412");
        assert_eq!(fmt_psi(0.25), "0.25");
        assert_eq!(fmt_psi(0.0), "0");
    }
}
