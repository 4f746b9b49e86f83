//! The IMDB Large Movie Review Dataset in its `aclImdb` layout
//! (`{train,test}/{pos,neg}/*.txt`), unpacked or in the `.tar.gz`.
//!
//! Following the paper, the 50,000 labelled reviews are pooled and split 80/20 stratified
//! (seeded); reviews are lower-cased and tokenised into words and punctuation; the
//! vocabulary holds the tokens seen at least twice in the training split, after `<pad>` = 0
//! and `<unk>` = 1; sequences are cut or padded (at the end) to 500 tokens.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::load::archive::Source;
use crate::load::format_err;
use crate::load::split::stratified_indices;
use crate::{ClassDataset, DataError, Features, Result, Targets};

/// How to read and encode IMDB.
#[derive(Debug, Clone, PartialEq)]
pub struct ImdbOptions {
    /// Tokens per sequence (500 in the paper).
    pub max_len: usize,
    /// A token enters the vocabulary when seen at least this often in the training split.
    pub min_count: usize,
    /// Fraction of each class held out for testing (0.2 in the paper).
    pub test_fraction: f64,
    /// Seed of the split.
    pub seed: u64,
}

impl Default for ImdbOptions {
    fn default() -> Self {
        Self {
            max_len: 500,
            min_count: 2,
            test_fraction: 0.2,
            seed: 0,
        }
    }
}

/// Token strings by id; id 0 is `<pad>`, id 1 is `<unk>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// Id of the padding token.
    pub const PAD: u32 = 0;
    /// Id of the unknown-token token.
    pub const UNK: u32 = 1;

    /// The tokens of `docs` seen at least `min_count` times, most frequent first (ties
    /// in byte order), after `<pad>` and `<unk>`.
    pub fn build<'a>(docs: impl Iterator<Item = &'a Vec<String>>, min_count: usize) -> Self {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for doc in docs {
            for t in doc {
                *counts.entry(t.as_str()).or_default() += 1;
            }
        }
        Self::from_counts(counts.into_iter(), min_count)
    }

    /// The vocabulary of tokens counted `counts` times (each token once), as [`Vocabulary::build`].
    fn from_counts<'a>(counts: impl Iterator<Item = (&'a str, usize)>, min_count: usize) -> Self {
        let mut kept: Vec<(&str, usize)> = counts.filter(|(_, c)| *c >= min_count).collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let tokens: Vec<String> = ["<pad>", "<unk>"]
            .into_iter()
            .chain(kept.into_iter().map(|(t, _)| t))
            .map(String::from)
            .collect();
        Self::from_tokens(tokens)
    }

    fn from_tokens(tokens: Vec<String>) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self { tokens, index }
    }

    /// Number of tokens, `<pad>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always false: `<pad>` and `<unk>` are always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The id of `token` (`<unk>` when unknown).
    pub fn id(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or(Self::UNK)
    }

    /// The token of `id`.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// `tokens` as ids, cut or padded with `<pad>` to `len`.
    pub fn encode(&self, tokens: &[String], len: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens.iter().take(len).map(|t| self.id(t)).collect();
        ids.resize(len, Self::PAD);
        ids
    }

    /// One token per line, in id order (how a run saves it).
    pub fn to_text(&self) -> String {
        let mut s = self.tokens.join("\n");
        s.push('\n');
        s
    }

    /// Reads the format of [`Vocabulary::to_text`].
    pub fn from_text(text: &str) -> Result<Self> {
        let tokens: Vec<String> = text.lines().map(String::from).collect();
        if tokens.len() < 2 || tokens[0] != "<pad>" || tokens[1] != "<unk>" {
            return Err(DataError::InvalidParameter {
                what: "vocabulary",
                reason: "expected <pad> and <unk> on its first two lines".into(),
            });
        }
        Ok(Self::from_tokens(tokens))
    }
}

/// Lower-cases `text`, turns `<br />` into spaces, and splits it into words (letters,
/// digits and inner apostrophes) and single punctuation marks.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text
        .to_lowercase()
        .replace("<br />", " ")
        .replace("<br/>", " ");
    let mut out = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = lower.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let inner_apostrophe =
            c == '\'' && !word.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Reviews tokenised per chunk when reading.
const CHUNK: usize = 2048;

/// Every distinct token seen, numbered in the order met.
#[derive(Default)]
struct Interner {
    index: HashMap<String, u32>,
    tokens: Vec<String>,
}

impl Interner {
    /// Tokenises a chunk of reviews in parallel and appends each as its token numbers.
    fn add(
        &mut self,
        path: &Path,
        chunk: Vec<(String, u32, Vec<u8>)>,
        out: &mut Vec<(String, u32, Vec<u32>)>,
    ) -> Result<()> {
        let docs: Vec<Vec<String>> = chunk
            .par_iter()
            .map(|(name, _, bytes)| {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| format_err(&path.join(name), format!("not UTF-8 text: {e}")))?;
                Ok(tokenize(text))
            })
            .collect::<Result<_>>()?;
        for ((name, label, _), doc) in chunk.into_iter().zip(docs) {
            let ids = doc
                .into_iter()
                .map(|t| match self.index.get(&t) {
                    Some(&id) => id,
                    None => {
                        let id = self.tokens.len() as u32;
                        self.tokens.push(t.clone());
                        self.index.insert(t, id);
                        id
                    }
                })
                .collect();
            out.push((name, label, ids));
        }
        Ok(())
    }
}

/// IMDB ready for training: the two splits (one sample store) and the vocabulary.
#[derive(Debug, Clone)]
pub struct Imdb {
    /// Training split (80%).
    pub train: ClassDataset,
    /// Test split (20%).
    pub test: ClassDataset,
    /// The training split's vocabulary.
    pub vocab: Vocabulary,
}

/// Loads the labelled reviews from the `aclImdb` folder (or the folder holding it, or the
/// `.tar.gz`), classes `neg` = 0 and `pos` = 1.
pub fn load_imdb(path: &Path, opts: &ImdbOptions) -> Result<Imdb> {
    let source = Source::open(path)?;
    // Reviews are tokenised as they are read, a chunk at a time in parallel, and every
    // token is interned: a review is kept as its token numbers, never as strings, so the
    // peak stays near the token matrix's size rather than the strings' (about 1 GiB).
    let mut interner = Interner::default();
    let mut reviews: Vec<(String, u32, Vec<u32>)> = Vec::new();
    let mut chunk: Vec<(String, u32, Vec<u8>)> = Vec::new();
    source.for_each(
        |n| {
            let parts: Vec<&str> = n.split('/').collect();
            let k = parts.len();
            k >= 3
                && n.ends_with(".txt")
                && matches!(parts[k - 3], "train" | "test")
                && matches!(parts[k - 2], "pos" | "neg")
        },
        |n, bytes| {
            let label = u32::from(n.split('/').rev().nth(1) == Some("pos"));
            chunk.push((n.to_string(), label, bytes));
            if chunk.len() == CHUNK {
                interner.add(path, std::mem::take(&mut chunk), &mut reviews)?;
            }
            Ok(())
        },
    )?;
    interner.add(path, chunk, &mut reviews)?;
    if reviews.is_empty() {
        return Err(DataError::Missing {
            what: "IMDB reviews ({train,test}/{pos,neg}/*.txt)".into(),
            tried: vec![path.to_path_buf()],
        });
    }
    reviews.sort_by(|a, b| a.0.cmp(&b.0));
    let labels: Vec<u32> = reviews.iter().map(|r| r.1).collect();
    let mut members = vec![Vec::new(), Vec::new()];
    for (i, &l) in labels.iter().enumerate() {
        members[l as usize].push(i as u32);
    }
    if let Some(c) = members.iter().position(Vec::is_empty) {
        return Err(DataError::EmptyClass {
            class: ["neg", "pos"][c].into(),
            context: format!(" in {}", path.display()),
        });
    }
    let (train_idx, test_idx) = stratified_indices(&members, opts.test_fraction, opts.seed)?;
    let mut counts = vec![0usize; interner.tokens.len()];
    for &i in train_idx.iter().flatten() {
        for &t in &reviews[i as usize].2 {
            counts[t as usize] += 1;
        }
    }
    let vocab = Vocabulary::from_counts(
        interner
            .tokens
            .iter()
            .map(String::as_str)
            .zip(counts.iter().copied())
            .filter(|(_, c)| *c > 0),
        opts.min_count,
    );
    let to_vocab: Vec<u32> = interner.tokens.iter().map(|t| vocab.id(t)).collect();
    drop(interner);
    // Filled in place: collecting per-thread pieces would hold the matrix twice.
    let mut tokens = vec![Vocabulary::PAD; reviews.len() * opts.max_len];
    if opts.max_len > 0 {
        tokens
            .par_chunks_mut(opts.max_len)
            .zip(reviews.par_iter())
            .for_each(|(row, (_, _, doc))| {
                for (slot, &t) in row.iter_mut().zip(doc) {
                    *slot = to_vocab[t as usize];
                }
            });
    }
    drop(reviews);
    let all = ClassDataset::new(
        "imdb",
        Features::Tokens(tokens),
        vec![opts.max_len],
        Targets::Classes,
        labels,
        vec!["neg".into(), "pos".into()],
    )?;
    Ok(Imdb {
        train: all
            .with_members(train_idx, " in the training split")?
            .renamed("imdb/train"),
        test: all
            .with_members(test_idx, " in the test split")?
            .renamed("imdb/test"),
        vocab,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::archive::tests::{write_tar_gz, write_tree};

    #[test]
    fn tokenizer_splits_words_and_punctuation() {
        assert_eq!(
            tokenize("It's GREAT!<br />Don't   miss it... (10/10)"),
            vec![
                "it's", "great", "!", "don't", "miss", "it", ".", ".", ".", "(", "10", "/", "10",
                ")"
            ]
        );
        assert_eq!(tokenize("'quoted'"), vec!["'", "quoted", "'"]);
    }

    #[test]
    fn vocabulary_counts_encodes_and_round_trips() {
        let docs = [
            vec!["a".to_string(), "b".into(), "a".into()],
            vec!["b".to_string(), "c".into(), "a".into()],
        ];
        let v = Vocabulary::build(docs.iter(), 2);
        assert_eq!(v.len(), 4); // <pad>, <unk>, a (3), b (2); c seen once
        assert_eq!(v.token(2), Some("a"));
        assert_eq!(
            v.encode(&["a".into(), "c".into()], 4),
            vec![2, Vocabulary::UNK, 0, 0]
        );
        assert_eq!(v.encode(&docs[0], 2), vec![2, 3]);
        assert_eq!(Vocabulary::from_text(&v.to_text()).expect("parses"), v);
        assert!(Vocabulary::from_text("x\ny\n").is_err());
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        let mut f = Vec::new();
        for split in ["train", "test"] {
            for (label, text) in [
                ("pos", "great film, great cast"),
                ("neg", "bad film, bad plot"),
            ] {
                for i in 0..5 {
                    f.push((
                        format!("aclImdb/{split}/{label}/{i}_7.txt"),
                        format!("{text} {i}").into_bytes(),
                    ));
                }
            }
        }
        f.push(("aclImdb/README".into(), b"readme".to_vec()));
        f.push(("aclImdb/train/unsup/0_0.txt".into(), b"unlabelled".to_vec()));
        f
    }

    /// The loader before it streamed: every review's tokens as strings, the vocabulary from
    /// the training split's, then the encoding. The streaming loader must give the same.
    fn reference(path: &Path, opts: &ImdbOptions) -> (Vec<u32>, Vec<u32>, Vocabulary) {
        let source = Source::open(path).expect("source");
        let mut reviews: Vec<(String, u32, Vec<u8>)> = Vec::new();
        source
            .for_each(
                |n| n.ends_with(".txt") && (n.contains("/pos/") || n.contains("/neg/")),
                |n, bytes| {
                    let label = u32::from(n.split('/').rev().nth(1) == Some("pos"));
                    reviews.push((n.to_string(), label, bytes));
                    Ok(())
                },
            )
            .expect("read");
        reviews.sort_by(|a, b| a.0.cmp(&b.0));
        let docs: Vec<Vec<String>> = reviews
            .iter()
            .map(|r| tokenize(std::str::from_utf8(&r.2).expect("utf-8")))
            .collect();
        let labels: Vec<u32> = reviews.iter().map(|r| r.1).collect();
        let mut members = vec![Vec::new(), Vec::new()];
        for (i, &l) in labels.iter().enumerate() {
            members[l as usize].push(i as u32);
        }
        let (train_idx, _) =
            stratified_indices(&members, opts.test_fraction, opts.seed).expect("split");
        let vocab = Vocabulary::build(
            train_idx.iter().flatten().map(|&i| &docs[i as usize]),
            opts.min_count,
        );
        let tokens = docs
            .iter()
            .flat_map(|d| vocab.encode(d, opts.max_len))
            .collect();
        (tokens, labels, vocab)
    }

    #[test]
    fn streaming_gives_what_the_string_loader_gave_across_chunks() {
        // More reviews than a chunk, words drawn so that counts straddle min_count.
        let mut f = Vec::new();
        let words = [
            "good", "bad", "plot", "actor", "it's", "!", "dull", "fine", "ok",
        ];
        for i in 0..(CHUNK + 700) {
            let split = if i % 2 == 0 { "train" } else { "test" };
            let label = if i % 3 == 0 { "pos" } else { "neg" };
            let text: Vec<String> = (0..(i % 17 + 3))
                .map(|j| {
                    let w = words[(i * 7 + j * 3) % words.len()];
                    if (i + j) % 11 == 0 {
                        format!("{w}{}", i % 97)
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            f.push((
                format!("aclImdb/{split}/{label}/{i}_1.txt"),
                format!("{}<br />The END.", text.join(" ")).into_bytes(),
            ));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        write_tar_gz(&dir.path().join("imdb.tar.gz"), &f);
        let opts = ImdbOptions {
            max_len: 12,
            ..ImdbOptions::default()
        };
        let path = dir.path().join("imdb.tar.gz");
        let got = load_imdb(&path, &opts).expect("load");
        let (tokens, labels, vocab) = reference(&path, &opts);
        assert_eq!(got.vocab, vocab);
        let Features::Tokens(t) = got.train.samples().features() else {
            panic!("tokens");
        };
        assert_eq!(t, &tokens);
        assert_eq!(got.train.samples().classes(), labels.as_slice());
    }

    #[test]
    fn loads_folder_and_archive_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &files());
        write_tar_gz(&dir.path().join("imdb.tar.gz"), &files());
        let opts = ImdbOptions {
            max_len: 6,
            ..ImdbOptions::default()
        };
        let a = load_imdb(&dir.path().join("aclImdb"), &opts).expect("folder");
        let b = load_imdb(&dir.path().join("imdb.tar.gz"), &opts).expect("archive");
        assert_eq!(a.train.members(), b.train.members());
        assert_eq!(a.vocab, b.vocab);
        assert_eq!(a.train.class_sizes(), vec![8, 8]);
        assert_eq!(a.test.class_sizes(), vec![2, 2]);
        assert_eq!(a.train.samples().sample_shape(), &[6]);
        // "film" and "," appear in every review; digits 0-4 appear twice in training at most.
        assert!(a.vocab.id("film") > 1 && a.vocab.id(",") > 1);
        let Features::Tokens(t) = a.train.samples().features() else {
            panic!("tokens");
        };
        assert_eq!(t.len(), 20 * 6);
    }

    #[test]
    fn missing_reviews_and_bad_text_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
        let e = load_imdb(&dir.path().join("empty"), &ImdbOptions::default())
            .expect_err("empty")
            .to_string();
        assert!(e.contains("IMDB reviews"), "{e}");
        let mut f = files();
        f[0].1 = vec![0xff, 0xfe, 0xfd];
        write_tree(&dir.path().join("bad"), &f);
        let e = load_imdb(&dir.path().join("bad"), &ImdbOptions::default())
            .expect_err("utf8")
            .to_string();
        assert!(e.contains("0_7.txt: not UTF-8 text"), "{e}");
        let only_pos: Vec<_> = files()
            .into_iter()
            .filter(|(n, _)| !n.contains("/neg/"))
            .collect();
        write_tree(&dir.path().join("pos"), &only_pos);
        let e = load_imdb(&dir.path().join("pos"), &ImdbOptions::default())
            .expect_err("no neg")
            .to_string();
        assert!(e.starts_with("class \"neg\" has no samples"), "{e}");
    }
}
