//! A guest export found and type-checked once per guest version, then called in every fresh
//! instance without checking again.
//!
//! bindgen's `instantiate` type-checks every export of the world on every instantiation
//! (`get_typed_func` compares the whole `event`/`outcome` type trees, field names included).
//! With a fresh instance per call that check ran on every request, for one call. Here the
//! check runs once, when the guest is loaded, and a call only looks its function up by index.

use std::marker::PhantomData;

use anyhow::{Result, anyhow};
use wasmtime::AsContextMut;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc,
};

/// The Rust signature the host calls an export with. `Params` may borrow (a call lends the
/// record and the event), hence the lifetime; a type check does not depend on it.
pub trait Signature {
    /// The export's name in the interface.
    const NAME: &'static str;
    type Params<'a>: ComponentNamedList + Lower;
    type Results: ComponentNamedList + Lift;
}

/// An export of one component, with its signature checked against it.
pub struct Export<S: Signature> {
    index: ComponentExportIndex,
    signature: PhantomData<fn() -> S>,
}

impl<S: Signature> Export<S> {
    /// Finds `S::NAME` in the exported interface `interface` of `component`, and checks in
    /// `instance` (an instance of that component) that its type is `S`'s.
    pub fn check(
        component: &Component,
        interface: &ComponentExportIndex,
        mut store: impl AsContextMut,
        instance: &Instance,
    ) -> Result<Export<S>> {
        let name = S::NAME;
        let index = component
            .get_export_index(Some(interface), name)
            .ok_or_else(|| anyhow!("guest does not export `{name}`"))?;
        instance
            .get_typed_func::<S::Params<'static>, S::Results>(store.as_context_mut(), &index)
            .map_err(|e| anyhow!("guest export `{name}` has another type: {e:?}"))?;
        Ok(Export {
            index,
            signature: PhantomData,
        })
    }

    /// The export in `instance`, an instance of the component this export was checked in.
    pub fn get<'a>(
        &self,
        store: impl AsContextMut,
        instance: &Instance,
    ) -> Result<TypedFunc<S::Params<'a>, S::Results>> {
        let func = instance
            .get_func(store, self.index)
            .ok_or_else(|| anyhow!("guest export `{}` is missing", S::NAME))?;
        // SAFETY: `check` found this index in the same component and checked its type against
        // `S` (lifetimes aside, which a component type does not have); every instance of the
        // component has the same exports with the same types.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}
