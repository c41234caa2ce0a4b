//! Account id ranges such as `10000-10049`.

use std::str::FromStr;

use crate::error::Error;

/// An inclusive range of numeric account ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub first: u64,
    pub last: u64,
}

impl IdRange {
    pub fn len(self) -> u64 {
        self.last - self.first + 1
    }

    /// The `n`-th id, wrapping around.
    pub fn nth(self, n: u64) -> u64 {
        self.first + n % self.len()
    }
}

impl FromStr for IdRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| Error::BadArgument {
            arg: "id range",
            reason: format!("{s:?}: {reason}"),
        };
        let (first, last) = s.split_once('-').unwrap_or((s, s));
        let first: u64 = first.trim().parse().map_err(|_| bad("not a number"))?;
        let last: u64 = last.trim().parse().map_err(|_| bad("not a number"))?;
        if last < first {
            return Err(bad("last below first"));
        }
        Ok(Self { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_single_ids() {
        let r: IdRange = "10000-10049".parse().unwrap();
        assert_eq!((r.len(), r.nth(0), r.nth(50)), (50, 10000, 10000));
        assert_eq!("7".parse::<IdRange>().unwrap().len(), 1);
        assert!("9-3".parse::<IdRange>().is_err());
        assert!("x-3".parse::<IdRange>().is_err());
    }
}
