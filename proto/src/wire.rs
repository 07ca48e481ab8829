//! Wire codec: little-endian integers, length-prefixed byte strings, checked on decode.

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated: wanted {wanted} more bytes at offset {offset}")]
    Truncated { offset: usize, wanted: usize },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u32 },
    #[error("{count} trailing bytes after message")]
    Trailing { count: usize },
    #[error("length {len} exceeds limit {limit}")]
    TooLong { len: usize, limit: usize },
}

/// The longest byte string or list a message may carry (paths, argv, dirents).
pub const MAX_LEN: usize = 16 << 20;

/// Builds a message.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.count(v.len());
        self.buf.extend_from_slice(v);
        self
    }
    /// A list length (the items follow).
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a message; every read is bounds-checked.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated {
                offset: self.pos,
                wanted: n,
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// A list length, checked against [`MAX_LEN`] and against the bytes left (each item
    /// takes at least one byte), so a hostile count cannot make us allocate.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        let limit = MAX_LEN.min(self.buf.len() - self.pos);
        if n > limit {
            return Err(DecodeError::TooLong { len: n, limit });
        }
        Ok(n)
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.count()?;
        Ok(self.take(n)?.to_vec())
    }
    /// Fails unless the whole buffer was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(DecodeError::Trailing { count }),
        }
    }
}

/// A message with a wire form.
pub trait Message: Sized {
    fn encode_into(&self, e: &mut Encoder);
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode_into(&mut e);
        e.finish()
    }
    /// Decodes a whole buffer: trailing bytes are an error.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(buf);
        let m = Self::decode_from(&mut d)?;
        d.finish()?;
        Ok(m)
    }
}

impl Message for Vec<Vec<u8>> {
    fn encode_into(&self, e: &mut Encoder) {
        e.count(self.len());
        for s in self {
            e.bytes(s);
        }
    }
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let n = d.count()?;
        (0..n).map(|_| d.bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_strings_and_ints() {
        let v: Vec<Vec<u8>> = vec![b"a".to_vec(), b"".to_vec(), b"hello".to_vec()];
        assert_eq!(Vec::<Vec<u8>>::decode(&v.encode()).unwrap(), v);
    }

    #[test]
    fn hostile_length_is_rejected_without_allocating() {
        let mut e = Encoder::new();
        e.u32(u32::MAX);
        assert!(matches!(
            Vec::<Vec<u8>>::decode(&e.finish()),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn truncated_and_trailing_input_fail() {
        assert!(matches!(
            Decoder::new(&[1, 2]).u32(),
            Err(DecodeError::Truncated { .. })
        ));
        let mut e = Encoder::new();
        e.count(0).u8(7);
        assert!(matches!(
            Vec::<Vec<u8>>::decode(&e.finish()),
            Err(DecodeError::Trailing { count: 1 })
        ));
    }
}
