//! Where records are kept: the fields of many records back to back in reused
//! buffers ([`Fields`]), one record's place in them ([`RecordSpan`]) and a
//! record borrowed from them ([`Record`]).

use super::MAX_RECORD_BYTES;

/// Where one record's stored fields are in a [`Fields`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSpan {
    pub(super) data_start: usize,
    pub(super) first_end: usize,
    pub(super) stored: usize,
    /// Fields the record has, stored or not.
    pub fields: usize,
}

/// A record's stored fields, borrowed from [`Fields`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub(super) bytes: &'a [u8],
    /// End of each field in `bytes`.
    pub(super) ends: &'a [usize],
}

impl<'a> Record<'a> {
    /// Field `j`, if it was stored.
    #[inline]
    pub fn get(&self, j: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(j)?;
        let start = if j == 0 { 0 } else { self.ends[j - 1] };
        self.bytes.get(start..end)
    }
}

/// The fields of many records back to back in two reused buffers, so
/// reading allocates nothing in steady state. Both buffers are kept at their
/// full length (zeroed once when they grow): csv-core writes into slices.
#[derive(Debug, Default)]
pub struct Fields {
    pub(super) bytes: Vec<u8>,
    pub(super) used: usize,
    /// End of each stored field, relative to its record's first byte.
    pub(super) ends: Vec<usize>,
    pub(super) ends_used: usize,
}

impl Fields {
    pub fn clear(&mut self) {
        self.used = 0;
        self.ends_used = 0;
    }

    /// One record's stored fields.
    #[inline]
    pub fn record(&self, span: &RecordSpan) -> Record<'_> {
        let ends = &self.ends[span.first_end..span.first_end + span.stored];
        let len = ends.last().copied().unwrap_or(0);
        Record { bytes: &self.bytes[span.data_start..span.data_start + len], ends }
    }

    /// The stored fields of a record.
    pub fn iter<'a>(&'a self, span: &RecordSpan) -> impl Iterator<Item = &'a [u8]> + 'a {
        let record = self.record(span);
        (0..record.ends.len()).filter_map(move |j| record.get(j))
    }

    /// Every stored field's bytes, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.used]
    }

    /// Bytes in use (field bytes and positions).
    pub fn used_bytes(&self) -> usize {
        self.used + self.ends_used * size_of::<usize>()
    }

    /// Bytes allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * size_of::<usize>()
    }

    /// Keeps at most `max_bytes` (half for field bytes, half for positions),
    /// giving back what one large record made them grow to.
    pub fn shrink_to(&mut self, max_bytes: usize) {
        self.clear();
        if self.bytes.capacity() > max_bytes / 2 {
            self.bytes = vec![0; max_bytes / 2];
        }
        let max_ends = max_bytes / 2 / size_of::<usize>();
        if self.ends.capacity() > max_ends {
            self.ends = vec![0; max_ends];
        }
    }

    pub(super) fn reserve_ends(&mut self, n: usize) {
        let need = self.ends_used + n;
        if self.ends.len() < need {
            // A quarter of headroom, not double: positions can weigh 8 bytes
            // per input byte (a row of empty fields), and the slack counts
            // towards the pipeline's bound.
            self.ends.resize(need.max(self.ends.len() + self.ends.len() / 4), 0);
        }
    }

    /// More room for the record that started at `data_start`; it never needs
    /// more than MAX_RECORD_BYTES + 1 (its output is never longer than its input).
    pub(super) fn grow_bytes(&mut self, data_start: usize) {
        let most = data_start + MAX_RECORD_BYTES + 1;
        let len = (2 * self.bytes.len()).max(4096).min(most).max(self.used + 1);
        self.bytes.resize(len, 0);
    }
}
