//! Generic reading of `key = value`, `key(...)` and bare `key` options.
//!
//! Unknown and duplicate keys are handled once here, from a table of option specs, so every
//! attribute reports them the same way (listing the valid keys) and the checks cannot drift per key.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Meta, Token, UnOp};

use crate::ctxt::Ctxt;
use crate::model::Spanned;
use crate::suggest::{did_you_mean, one_of};

/// One accepted option of an attribute: its key, whether it may repeat, and how to read it.
pub(crate) struct OptionSpec<T> {
    pub name: &'static str,
    pub repeatable: bool,
    pub read: fn(&Ctxt, &mut T, &Meta),
}

/// Parses `tokens` as a comma-separated option list; a syntax error is recorded and yields nothing.
pub(crate) fn parse_list(cx: &Ctxt, tokens: TokenStream) -> Vec<Meta> {
    match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(list) => list.into_iter().collect(),
        Err(err) => {
            cx.syn_error(err);
            Vec::new()
        }
    }
}

/// Reads every option into `target`, reporting unknown and duplicate keys on the key itself.
pub(crate) fn read_options<T>(
    cx: &Ctxt,
    attribute: &str,
    specs: &[OptionSpec<T>],
    metas: &[Meta],
    target: &mut T,
) {
    let mut seen: Vec<&'static str> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let Some(key) = path.get_ident() else {
            cx.error_spanned_by(
                path,
                format!(
                    "expected an option name; valid `{attribute}` options are: {}",
                    names(specs)
                ),
            );
            continue;
        };
        let key_text = key.to_string();
        let Some(spec) = specs.iter().find(|spec| spec.name == key_text) else {
            cx.error_spanned_by(
                key,
                format!(
                    "unknown `{attribute}` option `{key_text}`{}\nvalid options are: {}",
                    did_you_mean(&key_text, specs.iter().map(|spec| spec.name)),
                    names(specs)
                ),
            );
            continue;
        };
        if !spec.repeatable && seen.contains(&spec.name) {
            cx.error_spanned_by(
                key,
                format!("duplicate `{attribute}` option `{key_text}`; set it once"),
            );
            continue;
        }
        seen.push(spec.name);
        (spec.read)(cx, target, meta);
    }
}

fn names<T>(specs: &[OptionSpec<T>]) -> String {
    one_of(specs.iter().map(|spec| spec.name))
}

/// The key of an option, for messages.
pub(crate) fn key(meta: &Meta) -> String {
    meta.path()
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_default()
}

/// `key = value`: the value expression, or an error showing the expected form.
pub(crate) fn value<'m>(cx: &Ctxt, meta: &'m Meta, example: &str) -> Option<&'m Expr> {
    if let Meta::NameValue(nv) = meta {
        Some(&nv.value)
    } else {
        cx.error_spanned_by(
            meta,
            format!("expected `{} = ...`, e.g. `{example}`", key(meta)),
        );
        None
    }
}

/// `key(...)`: the nested options, or an error showing the expected form.
pub(crate) fn nested(cx: &Ctxt, meta: &Meta, example: &str) -> Option<Vec<Meta>> {
    if let Meta::List(list) = meta {
        Some(parse_list(cx, list.tokens.clone()))
    } else {
        cx.error_spanned_by(
            meta,
            format!("expected `{}(...)`, e.g. `{example}`", key(meta)),
        );
        None
    }
}

/// A bare `key` flag (also accepts `key = true` / `key = false`).
pub(crate) fn flag(cx: &Ctxt, meta: &Meta) -> Option<Span> {
    match meta {
        Meta::Path(path) => Some(path.span()),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => b.value.then(|| nv.path.span()),
            other => {
                cx.error_spanned_by(
                    other,
                    format!(
                        "`{}` is a flag: write `{}` or `{} = true`",
                        key(meta),
                        key(meta),
                        key(meta)
                    ),
                );
                None
            }
        },
        Meta::List(list) => {
            cx.error_spanned_by(
                &list.tokens,
                format!("`{}` is a flag: write `{}`", key(meta), key(meta)),
            );
            None
        }
    }
}

/// A string literal.
pub(crate) fn lit_str(cx: &Ctxt, expr: &Expr, example: &str) -> Option<LitStr> {
    lit_str_or(cx, expr, || {
        format!("expected a string literal, e.g. `{example}`")
    })
}

/// A string literal; anything else records the error `message` on `expr`.
pub(crate) fn lit_str_or(
    cx: &Ctxt,
    expr: &Expr,
    message: impl FnOnce() -> String,
) -> Option<LitStr> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = expr
    {
        Some(s.clone())
    } else {
        cx.error_spanned_by(expr, message());
        None
    }
}

/// An integer literal, possibly negative (range checks happen in validation, with better messages).
pub(crate) fn lit_int(cx: &Ctxt, expr: &Expr, example: &str) -> Option<Spanned<i32>> {
    let (negative, inner) = strip_minus(expr);
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = inner
    else {
        cx.error_spanned_by(
            expr,
            format!("expected an integer literal, e.g. `{example}`"),
        );
        return None;
    };
    signed(cx, expr, negative, int.base10_parse())
}

/// A float or integer literal.
pub(crate) fn lit_float(cx: &Ctxt, expr: &Expr, example: &str) -> Option<Spanned<f64>> {
    let (negative, inner) = strip_minus(expr);
    let parsed = match inner {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>(),
        _ => {
            cx.error_spanned_by(expr, format!("expected a number, e.g. `{example}`"));
            return None;
        }
    };
    signed(cx, expr, negative, parsed)
}

/// `expr` without its leading `-`, and whether it had one (a negative literal is a unary expression).
fn strip_minus(expr: &Expr) -> (bool, &Expr) {
    match expr {
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => (true, &*unary.expr),
        _ => (false, expr),
    }
}

/// The parsed number, negated back when the literal had a `-`, spanned on the whole of `expr`;
/// a parse error (e.g. out of range) is recorded.
fn signed<T: std::ops::Neg<Output = T>>(
    cx: &Ctxt,
    expr: &Expr,
    negative: bool,
    parsed: syn::Result<T>,
) -> Option<Spanned<T>> {
    match parsed {
        Ok(v) => Some(Spanned {
            value: if negative { -v } else { v },
            span: expr.span(),
        }),
        Err(err) => {
            cx.syn_error(err);
            None
        }
    }
}

/// `[a, b]`: a list of identifiers.
pub(crate) fn ident_list(cx: &Ctxt, expr: &Expr, example: &str) -> Vec<Ident> {
    let Expr::Array(array) = expr else {
        cx.error_spanned_by(
            expr,
            format!("expected a list of method names in brackets, e.g. `{example}`"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for elem in &array.elems {
        match elem {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                out.extend(path.path.get_ident().cloned());
            }
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                // Keep the parent so the argument-count check does not add a second, misleading error.
                out.extend(quoted_parent(cx, s));
            }
            other => {
                cx.error_spanned_by(other, format!("expected a method name, e.g. `{example}`"));
            }
        }
    }
    out
}

/// A parent written as a string: records that parents are method names and returns the name as
/// an identifier when it is one.
pub(crate) fn quoted_parent(cx: &Ctxt, s: &LitStr) -> Option<Ident> {
    cx.error_spanned_by(
        s,
        format!(
            "parents are method names, not strings: write `{}` without quotes",
            s.value()
        ),
    );
    s.parse::<Ident>().ok()
}

/// `["a", "b"]`: a list of string literals.
pub(crate) fn str_list(cx: &Ctxt, expr: &Expr, example: &str) -> Vec<LitStr> {
    let Expr::Array(array) = expr else {
        cx.error_spanned_by(
            expr,
            format!("expected a list of string literals in brackets, e.g. `{example}`"),
        );
        return Vec::new();
    };
    array
        .elems
        .iter()
        .filter_map(|elem| lit_str(cx, elem, example))
        .collect()
}

/// A string literal naming one of `choices`; unknown values list the choices and suggest the nearest.
pub(crate) fn choice<T: Copy>(
    cx: &Ctxt,
    expr: &Expr,
    what: &str,
    choices: &[(&'static str, T)],
) -> Option<Spanned<T>> {
    let example = format!("\"{}\"", choices[0].0);
    let lit = lit_str(cx, expr, &example)?;
    let text = lit.value();
    if let Some(&(_, value)) = choices.iter().find(|(name, _)| *name == text) {
        return Some(Spanned {
            value,
            span: lit.span(),
        });
    }
    cx.error_spanned_by(
        &lit,
        format!(
            "unknown {what} `{text}`{}\nexpected one of: {}",
            did_you_mean(&text, choices.iter().map(|(name, _)| *name)),
            one_of(choices.iter().map(|(name, _)| *name))
        ),
    );
    None
}
