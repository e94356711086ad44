//! Syntactic helpers over the user's argument and return types.

use syn::{ReturnType, Type};

use crate::model::{Step, Workflow};

/// An argument's declared type split into the value type and whether the step borrows it:
/// `&Order` decodes an `Order` and passes `&order`; `Order` passes the value itself.
pub(crate) fn value_type(ty: &Type) -> (&Type, bool) {
    match ty {
        Type::Reference(reference) if reference.mutability.is_none() => (&reference.elem, true),
        Type::Paren(paren) => value_type(&paren.elem),
        Type::Group(group) => value_type(&group.elem),
        other => (other, false),
    }
}

/// The declared return type of a step (validation guarantees there is one).
pub(crate) fn return_type<'a>(step: &'a Step<'_>) -> Option<&'a Type> {
    match &step.method.sig.output {
        ReturnType::Type(_, ty) => Some(ty),
        ReturnType::Default => None,
    }
}

/// The workflow input type: the input of the first step (the assertions make every other step agree).
pub(crate) fn input_type<'a>(wf: &'a Workflow<'_>) -> Option<&'a Type> {
    wf.steps
        .first()
        .and_then(|step| step.args.get(1))
        .map(|arg| value_type(&arg.ty).0)
}
