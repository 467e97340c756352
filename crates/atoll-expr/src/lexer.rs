//! The tokens of DynamoDB's expression languages.
//!
//! DynamoDB tokenizes every expression kind with one lexer, so `SET`,
//! `REMOVE`, `ADD`, `DELETE`, `AND`, `OR`, `NOT`, `BETWEEN` and `IN` are
//! keywords everywhere (`SET and = :v` is a syntax error, not a reserved-word
//! error). The rules, reproduced from the service's behaviour:
//!
//! - whitespace is space, tab, CR and LF only, and separates tokens;
//! - a name is an ASCII letter followed by ASCII letters, digits and `_`
//!   (`_a` and `1a` are not names: `_` and `1` lex on their own);
//! - `#` and `:` followed by one or more letters, digits or `_` are
//!   placeholders (`#1`, `:_` are fine; a lone `#` is an unknown character);
//! - a list index is `0` or a digit string without a leading zero (`01`
//!   lexes as `0` then `1`);
//! - `<>`, `<=`, `>=` are single tokens; any other character is a token of
//!   its own that no rule accepts, so it surfaces as the syntax error's token.
//!
//! Syntax errors quote the offending token and the source text from the start
//! of the token before it to the end of the token after it, whitespace
//! included: `Syntax error; token: "_", near: "SET _123"`. At the end of the
//! input the token is `<EOF>` and prints as nothing in `near`.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Tok {
    Comma,
    LParen,
    RParen,
    Dot,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    In,
    Between,
    Not,
    And,
    Or,
    Set,
    Add,
    Delete,
    Remove,
    /// A list index: `0` or digits without a leading zero.
    Index,
    /// A name (`abc`), keywords excluded.
    Id,
    /// `#name`.
    NameSub,
    /// `:value`.
    ValueSub,
    /// A character no rule accepts.
    Unknown,
    /// The end of the input.
    Eof,
}

/// One token: its kind and its byte range in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// A tokenized expression: the visible tokens, ending with exactly one `Eof`.
#[derive(Debug)]
pub(crate) struct Tokens<'a> {
    pub text: &'a str,
    pub list: Vec<Token>,
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn keyword(word: &str) -> Option<Tok> {
    const KEYWORDS: [(&str, Tok); 9] = [
        ("IN", Tok::In),
        ("BETWEEN", Tok::Between),
        ("NOT", Tok::Not),
        ("AND", Tok::And),
        ("OR", Tok::Or),
        ("SET", Tok::Set),
        ("ADD", Tok::Add),
        ("DELETE", Tok::Delete),
        ("REMOVE", Tok::Remove),
    ];
    KEYWORDS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, tok)| tok)
}

/// Tokenizes `text`. Never fails: unknown characters become `Unknown` tokens.
pub(crate) fn tokenize(text: &str) -> Tokens<'_> {
    let bytes = text.as_bytes();
    let mut list = Vec::new();
    let mut pos = 0;
    while let Some(&c) = bytes.get(pos) {
        let start = pos;
        let run = |from: usize| {
            let mut end = from;
            while bytes.get(end).is_some_and(|&b| is_id_char(b)) {
                end += 1;
            }
            end
        };
        let (kind, end) = match c {
            c if is_space(c) => {
                pos += 1;
                while bytes.get(pos).is_some_and(|&b| is_space(b)) {
                    pos += 1;
                }
                continue;
            }
            b',' => (Tok::Comma, pos + 1),
            b'(' => (Tok::LParen, pos + 1),
            b')' => (Tok::RParen, pos + 1),
            b'.' => (Tok::Dot, pos + 1),
            b'[' => (Tok::LBracket, pos + 1),
            b']' => (Tok::RBracket, pos + 1),
            b'=' => (Tok::Eq, pos + 1),
            b'+' => (Tok::Plus, pos + 1),
            b'-' => (Tok::Minus, pos + 1),
            b'<' => match bytes.get(pos + 1) {
                Some(b'>') => (Tok::Ne, pos + 2),
                Some(b'=') => (Tok::Le, pos + 2),
                _ => (Tok::Lt, pos + 1),
            },
            b'>' => match bytes.get(pos + 1) {
                Some(b'=') => (Tok::Ge, pos + 2),
                _ => (Tok::Gt, pos + 1),
            },
            b'#' | b':' => {
                let end = run(pos + 1);
                match (end > pos + 1, c) {
                    (true, b'#') => (Tok::NameSub, end),
                    (true, _) => (Tok::ValueSub, end),
                    (false, _) => (Tok::Unknown, pos + 1),
                }
            }
            b'0' => (Tok::Index, pos + 1),
            b'1'..=b'9' => {
                let mut end = pos + 1;
                while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                (Tok::Index, end)
            }
            c if c.is_ascii_alphabetic() => {
                let end = run(pos + 1);
                let word = text.get(pos..end).unwrap_or_default();
                (keyword(word).unwrap_or(Tok::Id), end)
            }
            _ => {
                // unverified: DynamoDB lexes UTF-16 code units, so a character
                // outside the BMP would be two unknown tokens; one token per
                // character keeps the message valid UTF-8.
                let width = text
                    .get(pos..)
                    .and_then(|rest| rest.chars().next())
                    .map_or(1, char::len_utf8);
                (Tok::Unknown, pos + width)
            }
        };
        list.push(Token { kind, start, end });
        pos = end;
    }
    list.push(Token {
        kind: Tok::Eof,
        start: text.len(),
        end: text.len(),
    });
    Tokens { text, list }
}

impl Tokens<'_> {
    /// The token at `index`; past the end, the final `Eof`.
    pub fn get(&self, index: usize) -> Token {
        self.list
            .get(index)
            .or_else(|| self.list.last())
            .copied()
            .unwrap_or(Token {
                kind: Tok::Eof,
                start: self.text.len(),
                end: self.text.len(),
            })
    }

    /// The kind of the token at `index`.
    pub fn kind(&self, index: usize) -> Tok {
        self.get(index).kind
    }

    /// The source text of the token at `index` (empty for `Eof`).
    pub fn text_of(&self, index: usize) -> &str {
        let token = self.get(index);
        self.text.get(token.start..token.end).unwrap_or_default()
    }

    /// DynamoDB's syntax error for the token at `index`, without the
    /// `Invalid <parameter>: ` prefix.
    pub fn syntax_error(&self, index: usize) -> String {
        let token = self.get(index);
        let shown = if token.kind == Tok::Eof {
            "<EOF>"
        } else {
            self.text_of(index)
        };
        // The previous token (or the start, so leading whitespace shows),
        // through the next token (or the end, so trailing whitespace shows).
        let start = match index.checked_sub(1) {
            Some(previous) => self.get(previous).start,
            None => 0,
        };
        let end = if token.kind == Tok::Eof {
            self.text.len()
        } else {
            self.get(index + 1).end
        };
        let near = self.text.get(start..end).unwrap_or_default();
        format!("Syntax error; token: \"{shown}\", near: \"{near}\"")
    }
}

/// The length DynamoDB measures: UTF-16 code units (Java `String.length()`).
pub(crate) fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        tokenize(text).list.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn names_keywords_and_placeholders() {
        use Tok::*;
        assert_eq!(
            kinds("SET a1_ = :v, #n[10].b"),
            vec![
                Set, Id, Eq, ValueSub, Comma, NameSub, LBracket, Index, RBracket, Dot, Id, Eof
            ]
        );
        assert_eq!(kinds("andy and AnD"), vec![Id, And, And, Eof]);
        assert_eq!(kinds("_a"), vec![Unknown, Id, Eof]);
        assert_eq!(kinds("01"), vec![Index, Index, Eof]);
        assert_eq!(
            kinds("# : #_ :1"),
            vec![Unknown, Unknown, NameSub, ValueSub, Eof]
        );
        assert_eq!(kinds("<><=>=<>"), vec![Ne, Le, Ge, Ne, Eof]);
        assert_eq!(kinds("ü!"), vec![Unknown, Unknown, Eof]);
    }

    #[test]
    fn near_spans_previous_to_next_token() {
        let tokens = tokenize("SET _123 = :v");
        assert_eq!(
            tokens.syntax_error(1),
            r#"Syntax error; token: "_", near: "SET _123""#
        );
        let tokens = tokenize("!!! INVALID !!!");
        assert_eq!(
            tokens.syntax_error(0),
            r#"Syntax error; token: "!", near: "!!""#
        );
        let tokens = tokenize("foo");
        assert_eq!(
            tokens.syntax_error(1),
            r#"Syntax error; token: "<EOF>", near: "foo""#
        );
        let tokens = tokenize("a ,  ");
        assert_eq!(
            tokens.syntax_error(2),
            r#"Syntax error; token: "<EOF>", near: ",  ""#
        );
    }
}
