use std::cmp::Ordering;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use proptest::prelude::*;

use super::*;
use crate::testing::{arb_number, big};

fn n(text: &str) -> Number {
    Number::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn encoded(number: &Number) -> Vec<u8> {
    let mut out = Vec::new();
    number.encode_ordered(&mut out);
    out
}

const MAX: &str = "9.9999999999999999999999999999999999999E+125";

#[test]
fn normalises_like_dynamodb() {
    let cases = [
        ("1", "1"),
        ("1.0", "1"),
        ("-0", "0"),
        ("+0.000", "0"),
        ("0e999999999999", "0"),
        ("+3", "3"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-1.50", "-1.5"),
        ("1E+2", "100"),
        ("1e5", "100000"),
        ("0.5E-3", "0.0005"),
        ("0.0001000", "0.0001"),
        ("-1.5e-3", "-0.0015"),
        ("000123.4500", "123.45"),
        ("12.345e1", "123.45"),
        ("12.345e2", "1234.5"),
        ("12.345e3", "12345"),
        (
            "-00001.23456789012345678901234567890123456780000",
            "-1.2345678901234567890123456789012345678",
        ),
        (
            "0000012345678901234567890123456789012345678",
            "12345678901234567890123456789012345678",
        ),
    ];
    for (input, output) in cases {
        assert_eq!(n(input).to_string(), output, "{input}");
    }
    assert_eq!(n("1E-130").to_string(), format!("0.{}1", "0".repeat(129)));
    assert_eq!(
        n("-0001.000e-130").to_string(),
        format!("-0.{}1", "0".repeat(129))
    );
    assert_eq!(
        n(MAX).to_string(),
        format!("{}{}", "9".repeat(38), "0".repeat(88))
    );
}

#[test]
fn rejects_non_numbers() {
    assert_eq!(Number::parse(""), Err(NumberError::Empty));
    for input in [
        " 1",
        "1 ",
        "abc",
        "1e",
        "1e+",
        "e5",
        ".",
        "-",
        "+",
        "-.",
        ".e1",
        "NaN",
        "Infinity",
        "-Infinity",
        "0x10",
        "1.2.3",
        "1e5.5",
        "1e5e5",
        "--1",
        "+-1",
        "1_000",
        "١",
        "1,5",
    ] {
        assert_eq!(
            Number::parse(input),
            Err(NumberError::Invalid {
                input: input.to_owned()
            }),
            "{input:?}"
        );
    }
}

#[test]
fn enforces_precision_and_range() {
    assert_eq!(n(&"9".repeat(38)).to_string(), "9".repeat(38));
    assert_eq!(Number::parse(&"9".repeat(39)), Err(NumberError::Precision));
    assert_eq!(
        Number::parse("123456789012345678901234567890123456789"),
        Err(NumberError::Precision)
    );
    assert_eq!(
        Number::parse("-1.23456789012345678901234567890123456789"),
        Err(NumberError::Precision)
    );
    let one_and_39_zeros = format!("1{}", "0".repeat(39));
    assert_eq!(n(&one_and_39_zeros).to_string(), one_and_39_zeros);
    assert_eq!(n(MAX).adjusted_exponent(), 125);
    for input in ["1E+126", "-1e126", "10E125", "1e999999999999999999999999"] {
        assert_eq!(Number::parse(input), Err(NumberError::Overflow), "{input}");
    }
    for input in [
        "1E-131",
        "-1e-131",
        "0.1e-130",
        "1e-999999999999999999999999",
    ] {
        assert_eq!(Number::parse(input), Err(NumberError::Underflow), "{input}");
    }
    // Range is checked before precision, as dynalite's checkNum does.
    assert_eq!(
        Number::parse(&format!("{}e126", "1".repeat(40))),
        Err(NumberError::Overflow)
    );
}

#[test]
fn error_messages_are_dynamodb_texts() {
    assert_eq!(
        NumberError::Empty.message(),
        "The parameter cannot be converted to a numeric value"
    );
    assert_eq!(
        Number::parse("b").unwrap_err().message(),
        "The parameter cannot be converted to a numeric value: b"
    );
    assert_eq!(
        NumberError::Overflow.message(),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(
        NumberError::Underflow.message(),
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    );
    assert_eq!(
        NumberError::Precision.message(),
        "Attempting to store more than 38 significant digits in a Number"
    );
}

#[test]
fn equality_and_order_are_numeric() {
    assert_eq!(n("1"), n("1.0"));
    assert_eq!(n("100"), n("1e2"));
    assert_eq!(n("-0"), Number::ZERO);
    assert!(!n("-0").is_negative());
    let ascending = [
        "-1e125", "-2", "-1.5", "-1", "-1e-130", "0", "1e-130", "0.5", "1", "1.05", "1.5", "2",
        "10", MAX,
    ];
    for pair in ascending.windows(2) {
        assert_eq!(n(pair[0]).cmp(&n(pair[1])), Ordering::Less, "{pair:?}");
        assert!(encoded(&n(pair[0])) < encoded(&n(pair[1])), "{pair:?}");
    }
}

#[test]
fn add_and_sub_are_exact() {
    let nines = "9".repeat(38);
    let cases = [
        ("1", "2", "3"),
        ("0.1", "0.2", "0.3"),
        ("-1", "1", "0"),
        ("1.5", "-0.5", "1"),
        (
            nines.as_str(),
            "1",
            "100000000000000000000000000000000000000",
        ),
        ("1e38", "-1", nines.as_str()),
        ("-1e38", "1", &format!("-{nines}")),
        ("1e-130", "1e-130", "2e-130"),
    ];
    for (a, b, sum) in cases {
        assert_eq!(n(a).checked_add(&n(b)), Ok(n(sum)), "{a} + {b}");
        assert_eq!(n(sum).checked_sub(&n(b)), Ok(n(a)), "{sum} - {b}");
    }
    assert_eq!(n("1e38").checked_add(&n("1")), Err(NumberError::Precision));
    assert_eq!(
        n("1e125").checked_add(&n("1e-130")),
        Err(NumberError::Precision)
    );
    assert_eq!(n(MAX).checked_add(&n("1e88")), Err(NumberError::Overflow));
    assert_eq!(
        n(MAX).checked_add(&n(&format!("{}e51", "1".repeat(38)))),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        n(&format!("-{MAX}")).checked_sub(&n(MAX)),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        n("1.1e-130").checked_sub(&n("1e-130")),
        Err(NumberError::Underflow)
    );
    assert_eq!(n(MAX).checked_sub(&n(MAX)), Ok(Number::ZERO));
}

#[test]
fn integer_conversions() {
    for value in [0, 1, -1, 10, -1200, i64::MAX, i64::MIN] {
        let number = Number::from_i64(value);
        assert_eq!(number.to_string(), value.to_string());
        assert_eq!(number.to_i64(), Some(value));
        assert!(number.is_integer());
    }
    assert_eq!(n("1.5").to_i64(), None);
    assert!(!n("1.5").is_integer());
    assert_eq!(n("9223372036854775808").to_i64(), None);
    assert_eq!(n("-9223372036854775809").to_i64(), None);
    assert_eq!(n("1e100").to_i64(), None);
    assert_eq!(n("1e3").to_i64(), Some(1000));
}

#[test]
fn ordered_encoding_layout_and_decoding() {
    assert_eq!(encoded(&Number::ZERO), [0x02]);
    assert_eq!(encoded(&n("1")), [0x03, 130, 11, 0x00]);
    assert_eq!(encoded(&n("-1")), [0x01, 255 - 130, 90, 0xFF]);
    assert_eq!(encoded(&n("12.5")), [0x03, 131, 13, 51, 0x00]);
    assert_eq!(
        encoded(&n(MAX)).len(),
        ordered::MAX_ENCODED_NUMBER_LEN_BYTES
    );
    let mut bytes = encoded(&n("-12.5"));
    bytes.extend_from_slice(b"tail");
    assert_eq!(
        Number::decode_ordered(&bytes),
        Ok((n("-12.5"), bytes.len() - 4))
    );
    let bad: [&[u8]; 9] = [
        &[],
        &[0x04],
        &[0x03],
        &[0x03, 130],
        &[0x03, 130, 0x00],
        &[0x03, 130, 1, 0x00],
        &[0x03, 130, 11, 1, 0x00],
        &[0x03, 130, 102, 0x00],
        &[0x01, 125, 90, 0x00],
    ];
    for bytes in bad {
        assert!(Number::decode_ordered(bytes).is_err(), "{bytes:?}");
    }
    let too_long: Vec<u8> = [0x03, 130].into_iter().chain([50; 20]).chain([0]).collect();
    assert!(Number::decode_ordered(&too_long).is_err());
}

#[test]
fn serde_uses_the_normalised_string() {
    assert_eq!(serde_json::to_string(&n("1.50")).unwrap(), r#""1.5""#);
    assert_eq!(
        serde_json::from_str::<Number>(r#""1e2""#).unwrap(),
        n("100")
    );
    assert!(serde_json::from_str::<Number>(r#""x""#).is_err());
    assert!(serde_json::from_str::<Number>("1").is_err());
}

proptest! {
    #[test]
    fn order_matches_bigdecimal(a in arb_number(), b in arb_number()) {
        let expected = big(&a).cmp(&big(&b));
        prop_assert_eq!(a.cmp(&b), expected);
        prop_assert_eq!(a == b, expected == Ordering::Equal);
        prop_assert_eq!(encoded(&a).cmp(&encoded(&b)), expected);
    }

    #[test]
    fn display_parse_round_trip(a in arb_number()) {
        let text = a.to_string();
        prop_assert_eq!(n(&text), a);
        prop_assert_eq!(big(&a), BigDecimal::from_str(&text).unwrap());
    }

    #[test]
    fn parse_accepts_equivalent_spellings(a in arb_number(), pad in 0usize..4) {
        let digits = a.coefficient.to_string();
        let sign = if a.is_negative() { "-" } else { "+" };
        let zeros = "0".repeat(pad);
        let exponent = i64::from(a.exponent);
        let padded = format!("{sign}{zeros}{digits}{zeros}.{zeros}E{}", exponent - pad as i64);
        let fraction = format!("{sign}0.{zeros}{digits}e{}", exponent + (pad + digits.len()) as i64);
        prop_assert_eq!(n(&padded), a);
        prop_assert_eq!(n(&fraction), a);
    }

    #[test]
    fn ordered_encoding_round_trips(a in arb_number(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut bytes = encoded(&a);
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(Number::decode_ordered(&bytes), Ok((a, len)));
    }

    #[test]
    fn decode_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..32)) {
        if let Ok((number, used)) = Number::decode_ordered(&bytes) {
            prop_assert_eq!(&encoded(&number)[..], &bytes[..used]);
        }
    }

    #[test]
    fn parse_of_random_text_never_panics(text in "[-+0-9.eE]{0,12}") {
        if let Ok(number) = Number::parse(&text) {
            prop_assert_eq!(big(&number), BigDecimal::from_str(&text).unwrap());
        }
    }

    #[test]
    fn add_and_sub_match_bigdecimal(a in arb_number(), b in arb_number()) {
        for (result, expected) in [
            (a.checked_add(&b), big(&a) + big(&b)),
            (a.checked_sub(&b), big(&a) - big(&b)),
        ] {
            let text = expected.to_string();
            match Number::parse(&text) {
                Ok(exact) => prop_assert_eq!(result, Ok(exact)),
                Err(error) => prop_assert_eq!(result, Err(error)),
            }
        }
    }

    #[test]
    fn size_is_about_one_byte_per_two_digits(a in arb_number()) {
        let digits = a.significant_digits() as usize;
        let size = a.size_bytes();
        prop_assert!(size > digits.div_ceil(2) || a.is_zero());
        prop_assert!(size <= 3 + digits.div_ceil(2));
    }
}
