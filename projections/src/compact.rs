//! Compact building blocks shared by the read models.
//!
//! Ten million events must fit in well under 2 GiB (issue 6 §3), so rows hold `u32`
//! indices into string arenas instead of `String`s, timestamps without `Option`'s
//! extra word, and category sets as bit masks.

use hashbrown::HashTable;
use mebyo_domain::{Category, Timestamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;

/// "No index": end of a linked list, or an absent reference.
pub const NONE: u32 = u32::MAX;

/// Append-only store of strings addressed by `u32`. One `String` plus one offset per
/// entry: ~4 bytes of overhead per id instead of ~40 for a boxed string.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ArenaRepr")]
pub struct Arena {
    text: String,
    /// End offset of entry `i`; it starts where entry `i - 1` ends.
    ends: Vec<u32>,
}

#[derive(Deserialize)]
struct ArenaRepr {
    text: String,
    ends: Vec<u32>,
}

impl TryFrom<ArenaRepr> for Arena {
    type Error = &'static str;
    /// A snapshot must not be able to make `get` panic later.
    fn try_from(r: ArenaRepr) -> Result<Self, Self::Error> {
        let mut start = 0u32;
        for &end in &r.ends {
            if end < start || end as usize > r.text.len() || !r.text.is_char_boundary(end as usize)
            {
                return Err("arena offsets out of order or out of range");
            }
            start = end;
        }
        Ok(Arena {
            text: r.text,
            ends: r.ends,
        })
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arena({} entries)", self.ends.len())
    }
}

impl Arena {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        let end = u32::try_from(self.text.len()).expect("arena beyond 4 GiB of id text");
        self.ends.push(end);
        u32::try_from(self.ends.len() - 1).expect("more than 4e9 arena entries")
    }

    /// The entry `i`; empty for [`NONE`] or an index out of range.
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        if i >= self.ends.len() {
            return "";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Overwrites entry `i` with zeros of the same length, so an erased person's ids
    /// leave memory and later snapshots (P4.9) without renumbering anything.
    pub fn scrub(&mut self, i: u32) {
        let i = i as usize;
        if i >= self.ends.len() {
            return;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends[i] as usize;
        let zeros = "0".repeat(end - start);
        self.text.replace_range(start..end, &zeros);
    }

    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    #[cfg(test)]
    pub fn text_contains(&self, s: &str) -> bool {
        self.text.contains(s)
    }
}

/// An [`Arena`] that also deduplicates: each distinct string gets one dense index,
/// so per-entity tables can be plain `Vec`s indexed by it.
#[derive(Clone, Default)]
pub struct Interner {
    arena: Arena,
    /// Indices into `arena`, hashed by their string. Not serialised: rebuilt on load.
    table: HashTable<u32>,
}

/// FNV-1a with a final avalanche. Fixed rather than randomly seeded so the fold stays
/// deterministic; the ids hashed here are platform-assigned pseudonyms.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

impl Interner {
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        self.table
            .find(hash(s), |&i| self.arena.get(i) == s)
            .copied()
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        let h = hash(s);
        if let Some(&i) = self.table.find(h, |&i| self.arena.get(i) == s) {
            return i;
        }
        let i = self.arena.push(s);
        let arena = &self.arena;
        self.table.insert_unique(h, i, |&j| hash(arena.get(j)));
        i
    }

    pub fn get(&self, i: u32) -> &str {
        self.arena.get(i)
    }

    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        let arena = &self.arena;
        self.table.shrink_to_fit(|&j| hash(arena.get(j)));
    }

    fn from_arena(arena: Arena) -> Result<Self, &'static str> {
        let mut table = HashTable::with_capacity(arena.len());
        for i in 0..arena.len() as u32 {
            let h = hash(arena.get(i));
            if table.find(h, |&j| arena.get(j) == arena.get(i)).is_some() {
                return Err("duplicate entry in an interner");
            }
            table.insert_unique(h, i, |&j| hash(arena.get(j)));
        }
        Ok(Self { arena, table })
    }
}

impl PartialEq for Interner {
    fn eq(&self, other: &Self) -> bool {
        self.arena == other.arena
    }
}

impl Eq for Interner {}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Interner({} entries)", self.len())
    }
}

impl Serialize for Interner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.arena.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Interner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Interner::from_arena(Arena::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A timestamp or nothing, in 8 bytes (`Option<Timestamp>` takes 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OptTs(i64);

impl OptTs {
    pub const NONE: OptTs = OptTs(i64::MIN);

    pub fn some(t: Timestamp) -> Self {
        // i64::MIN is 292,000 years BC: never a real event time.
        OptTs(t.0)
    }

    pub fn get(self) -> Option<Timestamp> {
        (self.0 != i64::MIN).then_some(Timestamp(self.0))
    }
}

impl Default for OptTs {
    fn default() -> Self {
        Self::NONE
    }
}

/// A set of [`Category`] as a bit mask (bit = index in [`Category::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cats(pub u16);

impl Cats {
    fn bit(c: Category) -> u16 {
        let i = Category::ALL
            .iter()
            .position(|x| *x == c)
            .expect("Category::ALL lists every category");
        1 << i
    }

    pub fn from_set(set: &BTreeSet<Category>) -> Self {
        Cats(set.iter().fold(0, |m, c| m | Self::bit(*c)))
    }

    pub fn contains(self, c: Category) -> bool {
        self.0 & Self::bit(c) != 0
    }

    pub fn to_set(self) -> BTreeSet<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| self.contains(*c))
            .collect()
    }
}

/// A person or a provider in 4 bytes: the top bit says which, the rest indexes that
/// kind's interner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartyIx(u32);

const PROVIDER_BIT: u32 = 1 << 31;

impl PartyIx {
    pub fn person(ix: u32) -> Self {
        debug_assert!(ix < PROVIDER_BIT);
        PartyIx(ix)
    }

    pub fn provider(ix: u32) -> Self {
        debug_assert!(ix < PROVIDER_BIT);
        PartyIx(ix | PROVIDER_BIT)
    }

    /// `Ok(person index)` or `Err(provider index)`.
    pub fn split(self) -> Result<u32, u32> {
        if self.0 & PROVIDER_BIT == 0 {
            Ok(self.0)
        } else {
            Err(self.0 & !PROVIDER_BIT)
        }
    }
}

/// Grows `v` so that index `ix` exists, filling with `fill`.
pub fn ensure_len<T: Clone>(v: &mut Vec<T>, ix: u32, fill: T) {
    let need = ix as usize + 1;
    if v.len() < need {
        v.resize(need, fill);
    }
}

/// Walks a singly linked list threaded through `rows` from `head` via `next`.
pub fn chain<'r, T>(
    rows: &'r [T],
    head: u32,
    next: impl Fn(&T) -> u32 + 'r,
) -> impl Iterator<Item = (u32, &'r T)> + 'r {
    let mut cur = head;
    std::iter::from_fn(move || {
        let row = rows.get(cur as usize)?;
        let ix = cur;
        cur = next(row);
        Some((ix, row))
    })
}

/// Validation of a restored snapshot: every stored index must point inside its table,
/// so a query can never panic on a crafted or buggy snapshot.
pub fn check_ix(ix: u32, len: usize, what: &'static str) -> Result<(), &'static str> {
    if ix == NONE || (ix as usize) < len {
        Ok(())
    } else {
        Err(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_dedupes_and_survives_serde() {
        let mut i = Interner::default();
        let a = i.intern("person-a");
        let b = i.intern("b");
        assert_eq!(i.intern("person-a"), a);
        assert_ne!(a, b);
        assert_eq!((i.get(a), i.get(b), i.get(NONE)), ("person-a", "b", ""));
        let bytes = postcard::to_allocvec(&i).unwrap();
        let back: Interner = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, i);
        assert_eq!(back.find("b"), Some(b));
        assert_eq!(back.find("c"), None);
    }

    #[test]
    fn corrupt_arena_is_refused_not_trusted() {
        let bad = ArenaRepr {
            text: "abc".into(),
            ends: vec![2, 1],
        };
        assert!(Arena::try_from(bad).is_err());
        let dup = Arena {
            text: "aa".into(),
            ends: vec![1, 2],
        };
        assert!(Interner::from_arena(dup).is_err());
    }

    #[test]
    fn scrub_keeps_indices_but_forgets_text() {
        let mut a = Arena::default();
        let x = a.push("rec-1");
        let y = a.push("rec-22");
        a.scrub(x);
        assert_eq!((a.get(x), a.get(y)), ("00000", "rec-22"));
    }

    #[test]
    fn cats_round_trip_every_subset_bit() {
        for c in Category::ALL {
            let set: BTreeSet<_> = [c, Category::Vitals].into();
            assert_eq!(Cats::from_set(&set).to_set(), set);
        }
        assert!(Category::ALL.len() <= 16, "Cats is a u16");
    }

    #[test]
    fn party_index_keeps_kind() {
        assert_eq!(PartyIx::person(7).split(), Ok(7));
        assert_eq!(PartyIx::provider(7).split(), Err(7));
    }
}
