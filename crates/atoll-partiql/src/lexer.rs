//! Tokens of a statement.

use crate::PartiqlError;

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    /// A bare word (keyword or identifier), as written.
    Word(String),
    /// A double-quoted identifier.
    Quoted(String),
    /// A single-quoted string.
    String(String),
    /// A number, as written.
    Number(String),
    /// `?`.
    Question,
    /// Punctuation or an operator (`,`, `.`, `(`, `<=`, `<<`, ...).
    Symbol(&'static str),
}

impl Token {
    /// Whether this is keyword `keyword` (case-insensitive).
    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    /// The token as DynamoDB quotes it in a syntax error.
    pub(crate) fn shown(&self) -> String {
        match self {
            Token::Word(word) => word.clone(),
            Token::Quoted(name) => format!("\"{name}\""),
            Token::String(text) => format!("'{text}'"),
            Token::Number(text) => text.clone(),
            Token::Question => "?".into(),
            Token::Symbol(symbol) => (*symbol).into(),
        }
    }
}

/// Symbols, longest first.
const SYMBOLS: &[&str] = &[
    "<<", ">>", "<=", ">=", "<>", "!=", "=", "<", ">", ",", ".", "(", ")", "[", "]", "{", "}", ":",
    "*", "+", "-",
];

/// The tokens of `text`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, PartiqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        if c == '-' && chars.get(at + 1) == Some(&'-') {
            // A comment to the end of the line.
            while chars.get(at).is_some_and(|c| *c != '\n') {
                at += 1;
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let (content, next) = quoted(&chars, at, c)?;
            tokens.push(match c {
                '\'' => Token::String(content),
                _ => Token::Quoted(content),
            });
            at = next;
            continue;
        }
        if c.is_ascii_digit() {
            let start = at;
            while chars.get(at).is_some_and(|c| c.is_ascii_digit()) {
                at += 1;
            }
            if chars.get(at) == Some(&'.') && chars.get(at + 1).is_some_and(char::is_ascii_digit) {
                at += 1;
                while chars.get(at).is_some_and(|c| c.is_ascii_digit()) {
                    at += 1;
                }
            }
            if matches!(chars.get(at), Some('e' | 'E')) {
                let mut next = at + 1;
                if matches!(chars.get(next), Some('+' | '-')) {
                    next += 1;
                }
                if chars.get(next).is_some_and(char::is_ascii_digit) {
                    at = next;
                    while chars.get(at).is_some_and(|c| c.is_ascii_digit()) {
                        at += 1;
                    }
                }
            }
            tokens.push(Token::Number(text_of(&chars, start, at)));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = at;
            while chars
                .get(at)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                at += 1;
            }
            tokens.push(Token::Word(text_of(&chars, start, at)));
            continue;
        }
        if c == '?' {
            tokens.push(Token::Question);
            at += 1;
            continue;
        }
        let symbol = SYMBOLS.iter().find(|symbol| {
            symbol
                .chars()
                .enumerate()
                .all(|(i, s)| chars.get(at + i) == Some(&s))
        });
        match symbol {
            Some(symbol) => {
                tokens.push(Token::Symbol(symbol));
                at += symbol.len();
            }
            None => {
                return Err(PartiqlError::syntax(format!(
                    "unexpected character '{c}' at position {at}"
                )));
            }
        }
    }
    Ok(tokens)
}

/// The characters `start..end` of `chars`.
fn text_of(chars: &[char], start: usize, end: usize) -> String {
    chars
        .get(start..end)
        .map(|run| run.iter().collect())
        .unwrap_or_default()
}

/// The content of the quoted token starting at `start` (a doubled quote
/// stands for itself), and where the next token starts.
fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), PartiqlError> {
    let mut content = String::new();
    let mut at = start + 1;
    loop {
        match chars.get(at) {
            None => {
                return Err(PartiqlError::syntax(format!(
                    "unterminated quoted text starting at position {start}"
                )));
            }
            Some(c) if *c == quote => {
                if chars.get(at + 1) == Some(&quote) {
                    content.push(quote);
                    at += 2;
                } else {
                    return Ok((content, at + 1));
                }
            }
            Some(c) => {
                content.push(*c);
                at += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_strings_numbers_and_symbols() {
        let tokens = tokenize("SELECT a.b FROM \"t\" WHERE x <= 1.5e3 AND y = 'it''s' <<?>>");
        let tokens = tokens.unwrap_or_default();
        assert_eq!(tokens.len(), 17);
        assert_eq!(tokens[5], Token::Quoted("t".into()));
        assert_eq!(tokens[8], Token::Symbol("<="));
        assert_eq!(tokens[9], Token::Number("1.5e3".into()));
        assert_eq!(tokens[13], Token::String("it's".into()));
        assert_eq!(tokens[14], Token::Symbol("<<"));
    }

    #[test]
    fn unterminated_text_is_a_syntax_error() {
        assert!(tokenize("SELECT * FROM \"t").is_err());
    }
}
