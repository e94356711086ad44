//! The 47 reference cases of the original `test_turn_manager.py`, with the exact values the original returns,
//! plus the extra reference table and decay series (domain spec §3.4).

use acf_worker::turn_manager::{
    AccumulationHint, GREETINGS, MessageShape, TurnManager, UserCadenceStats,
    adapt_to_user_cadence, analyze_message_shape, has_explicit_completion, hint_adjustment_ms,
};

/// Fixture TM: defaults.
fn tm() -> TurnManager {
    TurnManager::default()
}

/// Fixture CTM: bounds 100..=5000 and a table holding only `custom`.
fn ctm() -> TurnManager {
    TurnManager::new(100, 5000, [("custom", 1500)])
}

fn wait(manager: &TurnManager, content: &str, channel: &str, n: usize) -> u64 {
    manager.suggest_wait_ms(content, channel, None, None, n)
}

fn stats(p50: u64, p95: u64, samples: u64) -> UserCadenceStats {
    UserCadenceStats {
        inter_message_p50_ms: p50,
        inter_message_p95_ms: p95,
        sample_count: samples,
    }
}

// ---- channel and greeting constants ----

#[test]
fn case_01_whatsapp_default() {
    assert_eq!(tm().channel_default_ms("whatsapp"), 1200);
}

#[test]
fn case_02_web_default() {
    assert_eq!(tm().channel_default_ms("web"), 600);
}

#[test]
fn case_03_email_no_accumulation() {
    assert_eq!(tm().channel_default_ms("email"), 0);
}

#[test]
fn case_04_api_no_accumulation() {
    assert_eq!(tm().channel_default_ms("api"), 0);
}

#[test]
fn case_05_greeting_set_contains_common_greetings() {
    for greeting in ["hi", "hello", "hey", "good morning"] {
        assert!(GREETINGS.contains(&greeting), "{greeting}");
    }
}

// ---- shape classification ----

fn assert_shape(texts: &[&str], expected: MessageShape) {
    for text in texts {
        assert_eq!(analyze_message_shape(text), expected, "text {text:?}");
    }
}

#[test]
fn case_06_greeting_only() {
    assert_shape(&["hi", "hello", "Hey"], MessageShape::GreetingOnly);
}

#[test]
fn case_07_fragment_ellipsis() {
    assert_shape(&["I need help with..."], MessageShape::Fragment);
}

#[test]
fn case_08_fragment_comma() {
    assert_shape(&["I have a problem,"], MessageShape::Fragment);
}

#[test]
fn case_09_fragment_dash_beats_entity() {
    assert_shape(&["My order number is-"], MessageShape::Fragment);
}

#[test]
fn case_10_fragment_colon() {
    assert_shape(&["The issue:"], MessageShape::Fragment);
}

#[test]
fn case_11_incomplete_entity_order() {
    assert_shape(&["order #", "my order"], MessageShape::IncompleteEntity);
}

#[test]
fn case_12_incomplete_entity_ticket() {
    assert_shape(&["ticket", "case #"], MessageShape::IncompleteEntity);
}

#[test]
fn case_13_possibly_incomplete_short() {
    assert_shape(&["help me"], MessageShape::PossiblyIncomplete);
}

#[test]
fn case_14_likely_complete_with_period() {
    assert_shape(&["I need help."], MessageShape::LikelyComplete);
}

#[test]
fn case_15_likely_complete_with_question() {
    assert_shape(&["Can you help me?"], MessageShape::LikelyComplete);
}

#[test]
fn case_16_likely_complete_longer_text() {
    assert_shape(
        &["I need help with my account settings"],
        MessageShape::LikelyComplete,
    );
}

// ---- explicit completion ----

#[test]
fn case_17_explicit_period() {
    assert!(has_explicit_completion("Help me."));
}

#[test]
fn case_18_explicit_question() {
    assert!(has_explicit_completion("Can you help?"));
}

#[test]
fn case_19_explicit_exclamation() {
    assert!(has_explicit_completion("Thank you!"));
}

#[test]
fn case_20_explicit_please() {
    assert!(has_explicit_completion("Help me please"));
}

#[test]
fn case_21_explicit_thanks() {
    assert!(has_explicit_completion("Send it thanks"));
}

#[test]
fn case_22_explicit_thank_you() {
    assert!(has_explicit_completion("Done thank you"));
}

#[test]
fn case_23_no_explicit_completion() {
    assert!(!has_explicit_completion("I need help"));
}

// ---- suggest_wait_ms ----

#[test]
fn case_24_uses_channel_default() {
    assert_eq!(wait(&tm(), "Hello", "whatsapp", 1), 1700);
}

#[test]
fn case_25_greeting_only_increases_wait() {
    assert_eq!(wait(&tm(), "hi", "web", 1), 1100);
    assert_eq!(wait(&tm(), "I need help", "web", 1), 600);
}

#[test]
fn case_26_explicit_completion_reduces_wait() {
    assert_eq!(wait(&tm(), "I need help.", "web", 1), 300);
    assert_eq!(wait(&tm(), "I need help", "web", 1), 600);
}

#[test]
fn case_27_respects_min_wait() {
    assert_eq!(wait(&ctm(), "Short complete message.", "api", 1), 500);
}

#[test]
fn case_28_respects_max_wait() {
    assert_eq!(wait(&tm(), "order #", "whatsapp", 1), 1800);
}

#[test]
fn case_29_multiple_messages_reduces_wait() {
    assert_eq!(wait(&tm(), "I need", "web", 1), 800);
    assert_eq!(wait(&tm(), "help", "web", 2), 640);
    assert_eq!(wait(&tm(), "please", "web", 3), 200);
}

#[test]
fn case_30_unknown_channel_uses_default() {
    assert_eq!(wait(&tm(), "Hello", "unknown_channel", 1), 1300);
}

#[test]
fn case_31_custom_channel_default() {
    assert_eq!(wait(&ctm(), "Hello", "custom", 1), 2000);
}

// ---- cadence blending (base 1000) ----

#[test]
fn case_32_cadence_insufficient_samples() {
    assert_eq!(
        adapt_to_user_cadence(1000, Some(&stats(800, 1500, 3))),
        1000
    );
}

#[test]
fn case_33_cadence_blends_with_user_history() {
    assert_eq!(
        adapt_to_user_cadence(1000, Some(&stats(500, 1500, 10))),
        1000
    );
}

#[test]
fn case_34_cadence_fast_typer() {
    assert_eq!(adapt_to_user_cadence(1000, Some(&stats(200, 400, 10))), 720);
}

#[test]
fn case_35_cadence_slow_typer() {
    assert_eq!(
        adapt_to_user_cadence(1000, Some(&stats(2000, 4000, 10))),
        1800
    );
}

#[test]
fn case_36_cadence_no_stats() {
    assert_eq!(adapt_to_user_cadence(1000, None), 1000);
}

// ---- hint adjustment ----

fn hint(awaiting: bool, followup: bool, confidence: f64) -> AccumulationHint {
    AccumulationHint {
        awaiting_required_field: awaiting,
        expects_followup: followup,
        input_complete_confidence: confidence,
        expected_input_type: None,
    }
}

#[test]
fn case_37_hint_none() {
    assert_eq!(hint_adjustment_ms(None), 0);
}

#[test]
fn case_38_hint_awaiting_required_field() {
    assert_eq!(hint_adjustment_ms(Some(&hint(true, false, 0.0))), 1000);
}

#[test]
fn case_39_hint_expects_followup() {
    assert_eq!(hint_adjustment_ms(Some(&hint(false, true, 0.0))), 500);
}

#[test]
fn case_40_hint_high_confidence() {
    assert_eq!(hint_adjustment_ms(Some(&hint(false, false, 0.9))), -200);
}

#[test]
fn case_41_hint_low_confidence() {
    assert_eq!(hint_adjustment_ms(Some(&hint(false, false, 0.5))), 0);
    // Strictly greater than 0.8.
    assert_eq!(hint_adjustment_ms(Some(&hint(false, false, 0.8))), 0);
}

#[test]
fn case_42_hint_first_match_wins() {
    assert_eq!(hint_adjustment_ms(Some(&hint(true, false, 0.9))), 1000);
}

// ---- clamp ----

#[test]
fn case_43_clamp_below_min() {
    assert_eq!(tm().clamp(100), 200);
}

#[test]
fn case_44_clamp_above_max() {
    assert_eq!(tm().clamp(5000), 3000);
}

#[test]
fn case_45_clamp_within_bounds() {
    assert_eq!(tm().clamp(1000), 1000);
}

// ---- integration ----

#[test]
fn case_46_greeting_followed_by_request() {
    assert_eq!(wait(&tm(), "hi", "whatsapp", 1), 1700);
    assert_eq!(wait(&tm(), "I need help", "whatsapp", 2), 960);
}

#[test]
fn case_47_with_all_signals() {
    let result = tm().suggest_wait_ms(
        "What is your order number?",
        "whatsapp",
        Some(&stats(800, 1200, 10)),
        Some(&hint(true, false, 0.0)),
        1,
    );
    assert_eq!(result, 1940);
}

// ---- additional reference values (columns: web, whatsapp, email, api) ----

#[test]
fn extra_reference_table() {
    let rows: [(&[&str], [u64; 4]); 6] = [
        (&["", "   "], [800, 1400, 200, 200]),
        (
            &["hi!", "thanks", "Thank you", "hello."],
            [300, 900, 200, 200],
        ),
        (&["wait..."], [700, 1300, 200, 200]),
        (&["my id", "ID#", "I already paid"], [1200, 1800, 600, 600]),
        (&["order#123"], [800, 1400, 200, 200]),
        (&["x.  "], [600, 1200, 200, 200]),
    ];
    for (texts, expected) in rows {
        for text in texts {
            for (channel, want) in ["web", "whatsapp", "email", "api"]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    wait(&tm(), text, channel, 1),
                    want,
                    "text {text:?} on {channel}"
                );
            }
        }
    }
}

#[test]
fn extra_decay_series_uses_pow() {
    let series: Vec<u64> = (1..=6)
        .map(|n| wait(&tm(), "and more", "whatsapp", n))
        .collect();
    assert_eq!(series, [1400, 1120, 896, 716, 573, 458]);
}

#[test]
fn extra_zero_messages_behaves_like_one() {
    assert_eq!(
        wait(&tm(), "and more", "whatsapp", 0),
        wait(&tm(), "and more", "whatsapp", 1)
    );
}

#[test]
fn extra_email_and_api_never_return_zero_with_default_floor() {
    assert_eq!(wait(&tm(), "Hello", "email", 1), 500);
    assert_eq!(wait(&tm(), "order #", "api", 1), 600);
    assert_eq!(wait(&tm(), "A complete sentence here.", "email", 1), 200);
}

#[test]
fn extra_zero_floor_allows_no_accumulation() {
    let manager = TurnManager::new(0, 3000, std::iter::empty::<(String, u64)>());
    assert_eq!(wait(&manager, "A complete sentence here.", "email", 1), 0);
}

#[test]
fn extra_custom_table_replaces_standard_and_empty_table_keeps_it() {
    assert_eq!(ctm().channel_default_ms("whatsapp"), 800);
    assert_eq!(ctm().channel_default_ms("custom"), 1500);
    let empty = TurnManager::new(100, 5000, Vec::<(String, u64)>::new());
    assert_eq!(empty.channel_default_ms("whatsapp"), 1200);
}

#[test]
fn extra_unit_separator_counts_as_whitespace() {
    // Python's str.strip/split treat U+001F as whitespace; "hi\u{1f}" is still a greeting.
    assert_eq!(
        analyze_message_shape("hi\u{1f}"),
        MessageShape::GreetingOnly
    );
    assert_eq!(
        analyze_message_shape("good  morning"),
        MessageShape::PossiblyIncomplete
    );
}

#[test]
fn extra_inverted_bounds_return_min() {
    let manager = TurnManager::new(500, 100, [("web", 600)]);
    assert_eq!(wait(&manager, "I need help", "web", 1), 500);
}

#[test]
fn extra_inputs_deserialize_with_original_names_and_defaults() {
    let hint: AccumulationHint =
        serde_json::from_str(r#"{"awaiting_required_field": true}"#).unwrap();
    assert_eq!(hint_adjustment_ms(Some(&hint)), 1000);
    let cadence: UserCadenceStats =
        serde_json::from_str(r#"{"inter_message_p50_ms": 200, "inter_message_p95_ms": 400}"#)
            .unwrap();
    assert_eq!(cadence.sample_count, 0);
    assert_eq!(adapt_to_user_cadence(1000, Some(&cadence)), 1000);
}
