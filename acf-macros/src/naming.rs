//! Hatchet naming rules: the default workflow name and the characters the engine accepts.

/// `MyWorkflow` -> `my-workflow`, `HTTPServer` -> `http-server`, `Order2Ship` -> `order2-ship`.
pub(crate) fn kebab_case(ident: &str) -> String {
    let chars: Vec<char> = ident.trim_start_matches("r#").chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // A word starts at a lower->upper step, or at the last capital of an acronym ("HTTPServer").
            let boundary = prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower);
            if boundary && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `send_email` -> `SendEmail` (the type a `#[task]` function declares).
pub(crate) fn pascal_case(ident: &str) -> String {
    ident
        .trim_start_matches("r#")
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

/// The engine's name pattern, `^[a-zA-Z0-9.\-_]+$`; returns the first offending character, if any.
pub(crate) fn invalid_char(name: &str) -> Option<char> {
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_of_type_names() {
        assert_eq!(kebab_case("MyWorkflow"), "my-workflow");
        assert_eq!(kebab_case("HTTPServer"), "http-server");
        assert_eq!(kebab_case("Simple"), "simple");
        assert_eq!(kebab_case("Order2Ship"), "order2-ship");
        assert_eq!(kebab_case("snake_Case"), "snake-case");
        assert_eq!(kebab_case("ABC"), "abc");
    }

    #[test]
    fn name_characters() {
        assert_eq!(invalid_char("my-workflow.v2_a"), None);
        assert_eq!(invalid_char("my workflow"), Some(' '));
        assert_eq!(invalid_char("a:b"), Some(':'));
    }
}
