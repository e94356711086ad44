//! Near-miss suggestions ("did you mean `retries`?") for unknown options, values and parents.

/// Returns the candidate closest to `input` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A truncated, extended or inflected word ("retry" for "retries") shares a long prefix with its target.
    if let Some(hit) = candidates.iter().find(|candidate| {
        let shared = common_prefix(input, candidate);
        let shorter = input.chars().count().min(candidate.chars().count());
        shared >= 3 && shared * 3 >= shorter * 2
    }) {
        return Some(hit);
    }
    // A bare word that ends a longer option ("timeout" for "execution_timeout").
    if input.len() >= 4
        && let Some(hit) = candidates
            .iter()
            .find(|candidate| candidate.ends_with(&format!("_{input}")))
    {
        return Some(hit);
    }
    // Otherwise a third of the length (at least one edit) allows typos while rejecting unrelated words.
    let budget = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(input, candidate), candidate))
        .filter(|&(distance, _)| distance <= budget)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// `; did you mean `x`?` when a near miss exists, otherwise the empty string.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    nearest(input, candidates)
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default()
}

/// "`a`, `b`, `c`": the accepted alternatives, in declaration order.
pub(crate) fn one_of<'a>(candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, the most common typo ("fecth").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let options = ["retries", "parents", "execution_timeout"];
        assert_eq!(nearest("retry", options), Some("retries"));
        assert_eq!(nearest("parent", options), Some("parents"));
        assert_eq!(
            nearest("execution_timout", options),
            Some("execution_timeout")
        );
        assert_eq!(nearest("colour", options), None);
        assert_eq!(nearest("timeout", options), Some("execution_timeout"));
        assert_eq!(nearest("fecth", ["fetch", "parse"]), Some("fetch"));
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("fecth", "fetch"), 1);
    }
}
