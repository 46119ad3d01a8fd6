//! Numbers for the SVG the repository pages draw. Coordinates are written with one decimal;
//! Rust's exact float formatting (`{:.1}`) was a tenth of a list page's CPU time (28 points
//! on each of 50 sparklines), so they are rounded to tenths once and written as integers.

use std::fmt;

/// A coordinate in tenths, written as `12.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenths(i64);

impl Tenths {
    pub fn of(v: f64) -> Tenths {
        // Coordinates are within a few thousand: the cast cannot overflow.
        Tenths((v * 10.0).round() as i64)
    }
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{}", abs / 10, abs % 10)
    }
}

/// `x,y x,y …` for a polyline.
pub fn polyline(points: impl Iterator<Item = (f64, f64)>) -> String {
    use fmt::Write;
    let mut out = String::new();
    for (x, y) in points {
        if !out.is_empty() {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{},{}", Tenths::of(x), Tenths::of(y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_read_like_one_decimal() {
        for (v, s) in [
            (0.0, "0.0"),
            (10.0, "10.0"),
            (3.704, "3.7"),
            (3.75, "3.8"),
            (599.96, "600.0"),
            (-0.26, "-0.3"),
            (-0.04, "0.0"),
        ] {
            assert_eq!(Tenths::of(v).to_string(), s, "{v}");
        }
        assert_eq!(
            polyline([(0.0, 19.0), (3.7037, 1.0)].into_iter()),
            "0.0,19.0 3.7,1.0"
        );
    }
}
