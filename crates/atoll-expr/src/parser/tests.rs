//! The lookahead and the parser must agree: where recognition says an
//! expression fails, parsing fails on the same token, and what recognition
//! accepts parses. (The parser may stop earlier on redundant parentheses or
//! nesting, which recognition ignores.)

use proptest::prelude::*;

use super::Fail;
use super::predict::{CondEnd, Parser, Rec};
use crate::lexer::{Tok, tokenize};

const TOKENS: &[&str] = &[
    "a", "#n", ":v", "(", ")", "[", "]", "0", ".", ",", "=", "<", "+", "-", "AND", "OR", "NOT",
    "BETWEEN", "IN", "size", "f", "!", "SET", "REMOVE", "ADD",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn conditions_agree_with_their_lookahead(text in soup()) {
        let tokens = tokenize(&text);
        let recognized = Parser::new(&tokens).rec_condition(0, CondEnd::Eof, 0);
        let parsed = Parser::new(&tokens).condition_expression();
        match (recognized, parsed) {
            (Ok(Rec::Ok(end)), Ok(_)) => prop_assert_eq!(tokens.kind(end), Tok::Eof),
            (Ok(Rec::Ok(end)), Err(Fail::Syntax(at))) => {
                prop_assert_eq!(at, end);
                prop_assert_ne!(tokens.kind(end), Tok::Eof);
            }
            (Ok(Rec::Dead(dead)), Err(Fail::Syntax(at))) => prop_assert_eq!(at, dead),
            (_, Err(Fail::Redundant | Fail::TooDeep)) => {}
            (recognized, parsed) => {
                prop_assert!(false, "{text:?}: recognized {recognized:?}, parsed {parsed:?}");
            }
        }
    }
}
