//! How vectors are split into segments, and how a segment is named.

use std::fmt;

use crate::Error;

/// A segment's position in its index (`segments()[id.0 as usize]`); errors of one segment name
/// it ([`crate::Error::Segment`]).
///
/// ```
/// assert_eq!(omendex_index::SegmentId(2).to_string(), "segment 2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u16);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {}", self.0)
    }
}

/// How vectors are split into segments (consecutive runs of the input, in order).
///
/// ```
/// use omendex_index::SegmentPlan;
///
/// assert_eq!(SegmentPlan::Count(3).sizes(10)?, [4, 3, 3]);
/// assert_eq!(SegmentPlan::MaxSize(4).sizes(10)?, [4, 3, 3]);
/// assert!(SegmentPlan::Count(0).sizes(10).is_err());
/// # Ok::<(), omendex_index::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentPlan {
    /// Exactly this many segments (fewer when there are fewer vectors), sizes within one.
    Count(usize),
    /// Seal a segment at this many vectors; the last may be smaller.
    MaxSize(usize),
}

/// The most segments an index holds.
pub const MAX_SEGMENTS: usize = u16::MAX as usize;

impl SegmentPlan {
    /// The sizes of the segments for `n` vectors.
    pub fn sizes(self, n: usize) -> Result<Vec<usize>, Error> {
        let count = match self {
            SegmentPlan::Count(0) | SegmentPlan::MaxSize(0) => return Err(Error::BadPlan(self)),
            SegmentPlan::Count(s) => s.min(n.max(1)),
            SegmentPlan::MaxSize(cap) => n.div_ceil(cap).max(1),
        };
        if count > MAX_SEGMENTS {
            return Err(Error::BadPlan(self));
        }
        Ok((0..count).map(|i| n / count + usize::from(i < n % count)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_split_evenly_and_refuse_zero() {
        assert_eq!(SegmentPlan::Count(4).sizes(10).unwrap(), vec![3, 3, 2, 2]);
        assert_eq!(SegmentPlan::Count(4).sizes(2).unwrap(), vec![1, 1]);
        assert_eq!(SegmentPlan::MaxSize(4).sizes(10).unwrap(), vec![4, 3, 3]);
        assert_eq!(SegmentPlan::MaxSize(5).sizes(10).unwrap(), vec![5, 5]);
        assert!(SegmentPlan::Count(0).sizes(10).is_err());
        assert!(SegmentPlan::MaxSize(0).sizes(10).is_err());
    }
}
