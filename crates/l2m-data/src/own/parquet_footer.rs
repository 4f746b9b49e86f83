//! A check of a Parquet file's footer before the `parquet` crate parses it.
//!
//! The crate reserves memory from counts in the footer without bounding them by the footer's
//! size: a schema element declaring two billion children makes it reserve 16 GiB up front,
//! which aborts the process where the address space or the overcommit policy does not allow
//! it (found by fuzzing under a 2 GiB limit). This walks the footer's Thrift compact encoding
//! once, without allocating per element, and refuses a footer whose lists announce more
//! elements than it has bytes, or whose schema elements announce more children than the
//! schema has elements.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::Result;
use crate::load::{format_err, io_err};

/// The most nested structures and lists a footer may have.
const MAX_DEPTH: usize = 64;

struct Walker<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Check<T> = std::result::Result<T, String>;

impl Walker<'_> {
    fn byte(&mut self) -> Check<u8> {
        let b = *self.bytes.get(self.at).ok_or("the footer ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Check<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn zigzag(&mut self) -> Check<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn skip(&mut self, n: u64) -> Check<()> {
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(format!("a field of {n} bytes where {left} remain"));
        }
        self.at += n as usize;
        Ok(())
    }

    /// A list's (or set's) element count and type, the count bounded by the bytes left.
    fn list_header(&mut self) -> Check<(u64, u8)> {
        let h = self.byte()?;
        let size = match h >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        let left = (self.bytes.len() - self.at) as u64;
        if size > left {
            return Err(format!("a list of {size} elements in {left} bytes"));
        }
        Ok((size, h & 0x0f))
    }

    /// Skips a value of compact type `t`.
    fn value(&mut self, t: u8, depth: usize) -> Check<()> {
        if depth > MAX_DEPTH {
            return Err("nested deeper than 64".into());
        }
        match t {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(|_| ()),
            7 => self.skip(8),
            8 => {
                let n = self.varint()?;
                self.skip(n)
            }
            9 | 10 => {
                let (n, et) = self.list_header()?;
                for _ in 0..n {
                    if et == 1 || et == 2 {
                        self.skip(1)?;
                    } else {
                        self.value(et, depth + 1)?;
                    }
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                let left = (self.bytes.len() - self.at) as u64;
                if n > left {
                    return Err(format!("a map of {n} entries in {left} bytes"));
                }
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.value(kv >> 4, depth + 1)?;
                        self.value(kv & 0x0f, depth + 1)?;
                    }
                }
                Ok(())
            }
            12 => self.structure(depth + 1, |_, _, _| Ok(false)),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    /// Walks a structure; `field(walker, id, type)` may consume a field itself (returning
    /// true), else it is skipped.
    fn structure(
        &mut self,
        depth: usize,
        mut field: impl FnMut(&mut Self, i16, u8) -> Check<bool>,
    ) -> Check<()> {
        if depth > MAX_DEPTH {
            return Err("nested deeper than 64".into());
        }
        let mut id: i16 = 0;
        loop {
            let h = self.byte()?;
            let t = h & 0x0f;
            if t == 0 {
                return Ok(());
            }
            id = match h >> 4 {
                0 => i16::try_from(self.zigzag()?).map_err(|_| "a field id past i16")?,
                delta => id.wrapping_add(i16::from(delta)),
            };
            if !field(self, id, t)? {
                self.value(t, depth)?;
            }
        }
    }
}

/// Checks the footer (`FileMetaData`): every list within its bytes, every schema element's
/// `num_children` (field 5) within the number of schema elements (field 2).
fn check_footer(bytes: &[u8]) -> Check<()> {
    let mut w = Walker { bytes, at: 0 };
    w.structure(0, |w, id, t| {
        if id != 2 || t != 9 {
            return Ok(false);
        }
        let (n, et) = w.list_header()?;
        if et != 12 {
            return Err("the schema is not a list of structures".into());
        }
        for _ in 0..n {
            w.structure(2, |w, id, t| {
                if id == 5 && t == 5 {
                    let children = w.zigzag()?;
                    if children < 0 || children as u64 > n {
                        return Err(format!(
                            "a schema element declares {children} children, and the schema has {n} elements"
                        ));
                    }
                    return Ok(true);
                }
                Ok(false)
            })?;
        }
        Ok(true)
    })
}

/// Reads the footer of the Parquet file at `path` and checks it (see the module's
/// documentation); the `parquet` crate's own checks follow.
pub(crate) fn check(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let size = f.seek(SeekFrom::End(0)).map_err(io_err(path))?;
    if size < 12 {
        return Err(format_err(
            path,
            "not a Parquet file (shorter than 12 bytes)",
        ));
    }
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8)).map_err(io_err(path))?;
    f.read_exact(&mut tail).map_err(io_err(path))?;
    if &tail[4..] != b"PAR1" {
        // Encrypted footers ("PARE") and other files are left to the crate's own errors.
        return Ok(());
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if len + 8 > size {
        return Err(format_err(
            path,
            format!(
                "not a valid Parquet file: its footer claims {len} bytes of a {size}-byte file"
            ),
        ));
    }
    let mut footer = vec![0u8; len as usize];
    f.seek(SeekFrom::End(-(8 + len as i64)))
        .map_err(io_err(path))?;
    f.read_exact(&mut footer).map_err(io_err(path))?;
    check_footer(&footer).map_err(|e| {
        format_err(
            path,
            format!("not a valid Parquet file: its footer has {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `FileMetaData` with `version` and a schema of a root and `leaves` leaves, the root
    /// declaring `children` children.
    fn footer(children: i64, leaves: u8) -> Vec<u8> {
        let zz = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
        let varint = |mut v: u64, out: &mut Vec<u8>| {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        };
        let mut b = vec![0x15]; // field 1, i32
        varint(zz(1), &mut b);
        b.push(0x19); // field 2 (+1), list
        b.push(((1 + leaves) << 4) | 12);
        // Root: name (field 4, binary) and num_children (field 5, i32).
        b.push(0x48);
        varint(4, &mut b);
        b.extend_from_slice(b"root");
        b.push(0x15);
        varint(zz(children), &mut b);
        b.push(0);
        for _ in 0..leaves {
            b.push(0x48);
            varint(1, &mut b);
            b.push(b'x');
            b.push(0);
        }
        b.push(0);
        b
    }

    #[test]
    fn counts_past_the_footer_are_refused() {
        assert_eq!(check_footer(&footer(2, 2)), Ok(()));
        let e = check_footer(&footer(807_420_039, 2)).expect_err("children");
        assert!(
            e.contains("807420039 children") && e.contains("3 elements"),
            "{e}"
        );
        let e = check_footer(&footer(-1, 2)).expect_err("negative");
        assert!(e.contains("-1 children"), "{e}");
        // A list announcing more elements than bytes.
        let e = check_footer(&[0x19, 0xfc, 0xff, 0xff, 0xff, 0x0f]).expect_err("list");
        assert!(e.contains("elements in"), "{e}");
        // Truncated and deeply nested footers end in errors, not panics.
        let f = footer(2, 2);
        for cut in 0..f.len() {
            let _ = check_footer(&f[..cut]);
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x1c, 200).collect();
        assert!(check_footer(&deep).is_err());
    }
}
