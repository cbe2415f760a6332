//! Loading untrusted pickles: the allow-list of globals a load may resolve, and the checks the
//! load loop makes with it.
//!
//! Every global a pickle names (GLOBAL, STACK_GLOBAL, INST, and the extension codes through
//! copyreg's registry) is checked after the Python 2 name mapping and before anything is imported.
//! Only the objects those checked names resolved to may then be called (REDUCE, NEWOBJ,
//! NEWOBJ_EX, OBJ): what an allowed callable returns is never called by the pickle, even when it
//! is callable itself (a `functools.partial`, a class made at run time). The objects the names
//! resolved to (classes, functions, modules) are never the target of BUILD, APPEND(S),
//! SETITEM(S) or ADDITEMS, which would set their attributes or call their methods unbound. A
//! few allowed callables reach further and have their arguments checked: `copyreg._reconstructor`,
//! `copyreg.__newobj__` and `copyreg.__newobj_ex__` create instances of the class they are given,
//! which must itself have been named by an allowed global; `_codecs.encode`, `bytes`, `bytearray`
//! and `str` look a codec up by name when given an encoding (which may import its module), so
//! only the codecs built into the interpreter are accepted there.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

use once_cell::sync::OnceCell;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use smallvec::SmallVec;

use super::find_class;
use super::load::Loader;
use super::reader::Source;
use crate::errors;
use crate::ffi::{self, types, Obj};

/// What a load may do with an object an allowed name resolved to, besides calling it plainly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Plain,
    /// `copyreg._reconstructor(cls, base, state)`: `cls` and `base` must be allowed classes.
    Reconstructor,
    /// `copyreg.__newobj__(cls, *args)` / `copyreg.__newobj_ex__(cls, args, kwargs)`: `cls` must be
    /// an allowed class.
    NewObj,
    /// `_codecs.encode`, `bytes`, `bytearray`, `str`: an encoding argument names a codec, and
    /// looking one up may import its module, so only the few built into the interpreter are
    /// accepted (the pickler writes `_codecs.encode(text, "latin1")` and `bytearray(text,
    /// "latin-1")` at protocols 0-2).
    TextCodec,
}

/// A fast hash for the names of an allow-list. The tables are built from the caller's list and
/// only ever looked up with a pickle's names, never filled from them, so collisions an attacker
/// might aim for cost lookups nothing that matters; SipHash would cost more than the rest of the
/// check.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ byte as u64).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `(module, qualname)` pair of UTF-8 names, stored or borrowed: the set stores
/// [`StoredPair`]s and is looked up with a pickle's names in place, without copying them.
trait PairParts {
    fn parts(&self) -> (&[u8], &[u8]);
}

impl Hash for dyn PairParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (module, name) = self.parts();
        state.write(module);
        // 0xFF is never part of UTF-8: the split between the names is unambiguous.
        state.write_u8(0xFF);
        state.write(name);
    }
}

impl PartialEq for dyn PairParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn PairParts + '_ {}

impl PairParts for (&[u8], &[u8]) {
    fn parts(&self) -> (&[u8], &[u8]) {
        (self.0, self.1)
    }
}

/// One allowed pair: both names in one allocation.
struct StoredPair {
    text: Box<[u8]>,
    module_len: usize,
}

impl PairParts for StoredPair {
    fn parts(&self) -> (&[u8], &[u8]) {
        self.text.split_at(self.module_len)
    }
}

impl Hash for StoredPair {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn PairParts).hash(state)
    }
}

impl PartialEq for StoredPair {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for StoredPair {}

impl<'a> Borrow<dyn PairParts + 'a> for StoredPair {
    fn borrow(&self) -> &(dyn PairParts + 'a) {
        self
    }
}

/// The allowed `(module, qualname)` pairs.
#[derive(Default)]
pub struct AllowNames {
    pairs: HashSet<StoredPair, BuildHasherDefault<NameHasher>>,
}

impl AllowNames {
    /// Whether the pair of strs is allowed (a str that is not valid UTF-8 never is).
    fn allows(&self, module: &Obj, name: &Obj) -> bool {
        let (module, name) = match (module.str_utf8(), name.str_utf8()) {
            (Ok(m), Ok(n)) => (m, n),
            _ => return false,
        };
        self.pairs.contains(&(module, name) as &dyn PairParts)
    }

    /// Builds the set from an iterable of `(module, qualname)` pairs of strs.
    fn from_pairs(pairs: &Obj) -> PyResult<AllowNames> {
        let mut names = AllowNames::default();
        let iter = pairs.iter()?;
        while let Some(pair) = iter.next()? {
            let (module, name) = match pair.tuple_pair() {
                Some((m, n)) if m.is_str() && n.is_str() => (m, n),
                _ => {
                    return Err(PyTypeError::new_err(
                        "an allow-list holds (module, qualname) pairs of str",
                    ))
                }
            };
            let (module, name) = (module.str_utf8()?, name.str_utf8()?);
            let mut text = crate::alloc::with_capacity(module.len() + name.len())?;
            text.extend_from_slice(module);
            text.extend_from_slice(name);
            names
                .pairs
                .try_reserve(1)
                .map_err(|_| crate::alloc::no_memory())?;
            names.pairs.insert(StoredPair {
                text: text.into_boxed_slice(),
                module_len: module.len(),
            });
        }
        Ok(names)
    }
}

/// What the Python package registers at import: its `SafeUnpickler` class, the function that
/// turns any accepted `allow` argument into pairs, and the default allow-list.
struct Support {
    safe_class: Obj,
    normalize: Obj,
    default: Obj,
}

static SUPPORT: OnceCell<Support> = OnceCell::new();

fn support() -> PyResult<&'static Support> {
    SUPPORT
        .get()
        .ok_or_else(|| errors::unpickling("pickle5_rs allow-lists are not set up"))
}

/// Records what the package registers (once; later calls change nothing).
pub fn set_support(safe_class: Obj, normalize: Obj, default: Obj) {
    let _ = SUPPORT.set(Support {
        safe_class,
        normalize,
        default,
    });
}

/// Compiled allow-lists of the last frozensets seen (immutable, so their identity is their
/// content): passing the same preset again costs a pointer comparison.
static COMPILED: Mutex<Vec<(Obj, Arc<AllowNames>)>> = Mutex::new(Vec::new());
const COMPILED_KEPT: usize = 8;

/// The default allow-list object, once the package has registered it.
pub fn default_list() -> Option<&'static Obj> {
    SUPPORT.get().map(|s| &s.default)
}

static DEFAULT_COMPILED: OnceCell<Arc<AllowNames>> = OnceCell::new();

/// The compiled form of an `allow` argument (None: the default list).
pub fn compile(allow: Option<&Obj>) -> PyResult<Arc<AllowNames>> {
    let support = support()?;
    let allow = match allow {
        Some(allow) if !allow.is(&support.default) => allow,
        _ => {
            return DEFAULT_COMPILED
                .get_or_try_init(|| {
                    let pairs = support.normalize.call1(&support.default)?;
                    Ok::<_, PyErr>(Arc::new(AllowNames::from_pairs(&pairs)?))
                })
                .cloned()
        }
    };
    if let Ok(cache) = COMPILED.lock() {
        if let Some((_, names)) = cache.iter().find(|(obj, _)| obj.is(allow)) {
            return Ok(names.clone());
        }
    }
    let pairs = support.normalize.call1(allow)?;
    let names = Arc::new(AllowNames::from_pairs(&pairs)?);
    if allow.is_instance(types::frozenset())? {
        // The evicted entry is released after the lock is (releasing may run Python code).
        let evicted = match COMPILED.lock() {
            Ok(mut cache) => {
                let evicted = if cache.len() >= COMPILED_KEPT {
                    Some(cache.remove(0))
                } else {
                    None
                };
                crate::alloc::push(&mut cache, (allow.clone(), names.clone()))?;
                evicted
            }
            Err(_) => None,
        };
        drop(evicted);
    }
    Ok(names)
}

/// The objects allowed names resolved to, kept (with a reference) for identity checks. An
/// `Unpickler` keeps them across its `load()` calls, as it keeps its memo.
#[derive(Default)]
pub struct ResolvedGlobals {
    entries: SmallVec<[(Obj, Kind); 4]>,
    /// Address -> index into `entries`, built once there are more than a few.
    index: Option<HashMap<usize, usize, BuildHasherDefault<AddressHasher>>>,
    /// The last encoding (a str) a [`Kind::TextCodec`] call was allowed with.
    accepted_encoding: Option<Obj>,
}

/// Up to this many entries a linear search is the fastest lookup.
const LINEAR_ENTRIES: usize = 4;

/// A hash of an object's address: aligned addresses have their low bits clear, which the table
/// indexes by, so the product's well-mixed high bits are rotated down.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_usize(byte as usize);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(32)
    }
}

impl ResolvedGlobals {
    #[inline]
    fn position(&self, obj: &Obj) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&obj.addr()).copied(),
            None => self.entries.iter().position(|(o, _)| o.is(obj)),
        }
    }

    #[inline]
    fn kind_of(&self, obj: &Obj) -> Option<Kind> {
        self.position(obj).map(|i| self.entries[i].1)
    }

    /// Whether the call needs no closer look (checked inline): `obj` may be called with any
    /// arguments, or it takes an encoding and is given none or the one last accepted (the
    /// protocol 0-2 pickler writes one memoized 'latin1' for all of them).
    #[inline]
    fn calls_plainly(&self, obj: &Obj, args: &Obj, kwargs: Option<&Obj>) -> bool {
        match self.kind_of(obj) {
            Some(Kind::Plain) => true,
            Some(Kind::TextCodec) if kwargs.is_none() && args.is_tuple() => {
                match (args.tuple_get(1), &self.accepted_encoding) {
                    (None, _) => true,
                    (Some(encoding), Some(accepted)) => encoding.is(accepted),
                    _ => false,
                }
            }
            _ => false,
        }
    }

    fn insert(&mut self, obj: Obj, kind: Kind) -> PyResult<()> {
        if let Some(i) = self.position(&obj) {
            // An object reached by several names gets the strictest treatment.
            if kind != Kind::Plain {
                self.entries[i].1 = kind;
            }
            return Ok(());
        }
        let addr = obj.addr();
        self.entries
            .try_reserve(1)
            .map_err(|_| crate::alloc::no_memory())?;
        self.entries.push((obj, kind));
        let position = self.entries.len() - 1;
        if self.index.is_none() && self.entries.len() > LINEAR_ENTRIES {
            let mut index = HashMap::default();
            index
                .try_reserve(self.entries.len() * 2)
                .map_err(|_| crate::alloc::no_memory())?;
            for (i, (o, _)) in self.entries.iter().enumerate() {
                index.insert(o.addr(), i);
            }
            self.index = Some(index);
        } else if let Some(index) = &mut self.index {
            index
                .try_reserve(1)
                .map_err(|_| crate::alloc::no_memory())?;
            index.insert(addr, position);
        }
        Ok(())
    }

    /// The objects held, for garbage-collector traversal.
    pub fn objects(&self) -> impl Iterator<Item = &Obj> {
        self.entries.iter().map(|(o, _)| o)
    }
}

/// An `Unpickler`'s restriction: its allow-list (none: unrestricted) and what it resolved.
#[derive(Default)]
pub struct Restriction {
    names: RefCell<Option<Arc<AllowNames>>>,
    pub resolved: RefCell<ResolvedGlobals>,
}

impl Restriction {
    pub fn names(&self) -> Option<Arc<AllowNames>> {
        self.names.borrow().clone()
    }

    /// Restricts to `allow` (replacing any earlier list; a restriction is never lifted).
    pub fn set(&self, allow: &Obj) -> PyResult<()> {
        let names = compile(Some(allow))?;
        *self.names.borrow_mut() = Some(names);
        Ok(())
    }

    /// Called by `Unpickler.__init__`: an instance of the package's `SafeUnpickler` whose own
    /// `__init__` did not run (a subclass skipped it) allows nothing rather than everything.
    pub fn on_init(&self, instance: &Obj) -> PyResult<()> {
        if self.names.borrow().is_some() {
            return Ok(());
        }
        let safe_class = match SUPPORT.get() {
            Some(s) => &s.safe_class,
            None => return Ok(()),
        };
        if instance.is_instance(ffi::TypeRef::of_obj(safe_class))? {
            *self.names.borrow_mut() = Some(Arc::new(AllowNames::default()));
        }
        Ok(())
    }

    /// Forgets the resolved objects (a new `__init__`), releasing them after the borrow ends.
    pub fn forget_resolved(&self) {
        let old = match self.resolved.try_borrow_mut() {
            Ok(mut resolved) => std::mem::take(&mut *resolved),
            Err(_) => return,
        };
        drop(old);
    }

    /// For the GC's `tp_clear`.
    pub fn clear(&self) {
        if let Ok(mut resolved) = self.resolved.try_borrow_mut() {
            let old = std::mem::take(&mut *resolved);
            drop(resolved);
            drop(old);
        }
    }
}

/// The resolved globals are borrowed only for a lookup or an insertion, never while Python code
/// runs; finding them borrowed would be a bug, reported rather than a panic.
#[cold]
fn busy() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("pickle5_rs: the allow-list state is in use")
}

/// The `ForbiddenGlobalError` class: a subclass of `pickle.UnpicklingError`.
static FORBIDDEN: OnceCell<Obj> = OnceCell::new();

pub fn init(py: Python) -> PyResult<()> {
    let base = errors::unpickling_error_class(py);
    let namespace = pyo3::types::PyDict::new(py);
    namespace.set_item("__module__", "pickle5_rs")?;
    namespace.set_item(
        "__doc__",
        "A pickle names a global outside the allow-list, or makes a call or change the \
         allow-list does not permit. `module` and `name` give the global, when there is one.",
    )?;
    namespace.set_item("module", py.None())?;
    namespace.set_item("name", py.None())?;
    let class =
        py.get_type::<pyo3::types::PyType>()
            .call1(("ForbiddenGlobalError", (base,), namespace))?;
    let _ = FORBIDDEN.set(Obj::of(class));
    Ok(())
}

pub fn forbidden_class(py: Python<'_>) -> PyResult<&PyAny> {
    FORBIDDEN
        .get()
        .map(|c| c.as_any(py))
        .ok_or_else(|| errors::unpickling("pickle5_rs is not initialised"))
}

/// A `ForbiddenGlobalError` with `message`, and the global's names when there is one.
fn forbidden(args: std::fmt::Arguments, names: Option<(&Obj, &Obj)>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let py = ffi::gil();
        let class = Obj::of(forbidden_class(py)?);
        let text = errors::message(args)?;
        let instance = class.call1(&text)?;
        if let Some((module, name)) = names {
            instance.setattr(&ffi::new_str("module")?, module)?;
            instance.setattr(&ffi::new_str("name")?, name)?;
        }
        Ok(PyErr::from_instance(instance.as_any(py)))
    };
    build().unwrap_or_else(|e| e)
}

/// A global for a message, quoted, as an allow-list spells it: `module.name`, or
/// `module:qualname` when the qualname is dotted; repr for strs that are not valid UTF-8.
fn dotted(module: &Obj, name: &Obj) -> String {
    match (module.str_utf8(), name.str_utf8()) {
        (Ok(m), Ok(n)) => format!(
            "'{}{}{}'",
            String::from_utf8_lossy(m),
            if n.contains(&b'.') { ':' } else { '.' },
            String::from_utf8_lossy(n)
        ),
        _ => format!("{}.{}", module.repr_string(), name.repr_string()),
    }
}

/// An object for a message: a class or function by its name, anything else by its type.
fn describe(obj: &Obj) -> String {
    let named = || -> Option<String> {
        let module = obj.getattr_opt(crate::interned!("__module__")).ok()??;
        let qualname = obj.getattr_opt(crate::interned!("__qualname__")).ok()??;
        if !module.is_str() || !qualname.is_str() {
            return None;
        }
        Some(dotted(&module, &qualname))
    };
    if obj.is_type() || obj.is_callable() {
        if let Some(text) = named() {
            return text;
        }
    }
    format!("an object of type '{}'", obj.type_name())
}

/// Checks a global's (module, name) pair, as the pickle wrote it, against `names`.
pub fn check_global(
    names: &AllowNames,
    module: &Obj,
    name: &Obj,
    proto: u8,
    fix_imports: bool,
) -> PyResult<(Obj, Obj)> {
    let (mapped_module, mapped_name) = find_class::mapped_names(module, name, proto, fix_imports)?;
    if names.allows(&mapped_module, &mapped_name) {
        return Ok((mapped_module, mapped_name));
    }
    let written = if mapped_module.is(module) && mapped_name.is(name) {
        String::new()
    } else {
        format!(" (written {} in the pickle)", dotted(module, name))
    };
    Err(forbidden(
        format_args!(
            "global {}{} is forbidden",
            dotted(&mapped_module, &mapped_name),
            written
        ),
        Some((&mapped_module, &mapped_name)),
    ))
}

/// The objects whose calls reach further than a plain call, compared by identity.
struct Specials {
    reconstructor: Obj,
    newobj: Obj,
    newobj_ex: Obj,
    codecs_encode: Obj,
}

/// The encodings a [`Kind::TextCodec`] call may name: built in, looked up without an import.
const BUILTIN_CODECS: [&[u8]; 5] = [b"latin1", b"latin-1", b"utf-8", b"utf8", b"ascii"];

static SPECIALS: OnceCell<Specials> = OnceCell::new();

fn special_kind(obj: &Obj) -> PyResult<Kind> {
    let s = SPECIALS.get_or_try_init(|| -> PyResult<Specials> {
        let copyreg = ffi::import(&ffi::new_str("copyreg")?)?;
        let codecs = ffi::import(&ffi::new_str("_codecs")?)?;
        Ok(Specials {
            reconstructor: copyreg.getattr(&ffi::new_str("_reconstructor")?)?,
            newobj: copyreg.getattr(&ffi::new_str("__newobj__")?)?,
            newobj_ex: copyreg.getattr(&ffi::new_str("__newobj_ex__")?)?,
            codecs_encode: codecs.getattr(&ffi::new_str("encode")?)?,
        })
    })?;
    Ok(if obj.is(&s.reconstructor) {
        Kind::Reconstructor
    } else if obj.is(&s.newobj) || obj.is(&s.newobj_ex) {
        Kind::NewObj
    } else if obj.is(&s.codecs_encode)
        || [types::bytes(), types::bytearray(), types::str()].contains(&ffi::TypeRef::of_obj(obj))
    {
        Kind::TextCodec
    } else {
        Kind::Plain
    })
}

impl<'a, S: Source> Loader<'a, S> {
    /// `find_class` under an allow-list: the names are checked before anything is imported (or
    /// a `find_class` override is called), and the object found is remembered as allowed.
    pub(super) fn find_allowed_class(
        &self,
        names: &AllowNames,
        module: &Obj,
        name: &Obj,
    ) -> PyResult<Obj> {
        let proto = self.proto.get();
        let (mapped_module, mapped_name) =
            check_global(names, module, name, proto, self.settings.fix_imports)?;
        let obj = match &self.settings.find_class {
            Some(method) => method.call2(module, name)?,
            None => {
                find_class::audit(module, name)?;
                let found = ffi::import(&mapped_module)?;
                find_class::get_attribute(&found, &mapped_name, proto >= 4)?
            }
        };
        let kind = special_kind(&obj)?;
        self.resolved
            .try_borrow_mut()
            .map_err(|_| busy())?
            .insert(obj.clone(), kind)?;
        Ok(obj)
    }

    /// Under an allow-list, refuses to call `callable` (REDUCE, NEWOBJ, OBJ) unless an allowed
    /// name resolved to it, and checks the arguments of those that reach further.
    /// `args` is the tuple of positional arguments, `kwargs` the dict of NEWOBJ_EX.
    #[inline]
    pub(super) fn guard_call(
        &self,
        opname: &str,
        callable: &Obj,
        args: &Obj,
        kwargs: Option<&Obj>,
    ) -> PyResult<()> {
        if self.settings.allow.is_none() {
            return Ok(());
        }
        if self
            .resolved
            .try_borrow()
            .is_ok_and(|resolved| resolved.calls_plainly(callable, args, kwargs))
        {
            return Ok(());
        }
        self.guard_call_restricted(opname, callable, args, kwargs)
    }

    #[inline(never)]
    fn guard_call_restricted(
        &self,
        opname: &str,
        callable: &Obj,
        args: &Obj,
        kwargs: Option<&Obj>,
    ) -> PyResult<()> {
        let kind = self
            .resolved
            .try_borrow()
            .map_err(|_| busy())?
            .kind_of(callable);
        let kind = match kind {
            Some(kind) => kind,
            None => {
                return Err(forbidden(
                    format_args!(
                    "{} on {} is forbidden: only objects named by allowed globals may be called",
                    opname,
                    describe(callable)
                ),
                    None,
                ))
            }
        };
        if kind == Kind::Plain {
            return Ok(());
        }
        // The checks below look at positional arguments only.
        let has_kwargs = match kwargs {
            Some(kwargs) => kwargs.len()? > 0,
            None => false,
        };
        if !args.is_tuple() || has_kwargs {
            return Err(forbidden(
                format_args!(
                    "{} of {} with keyword arguments is forbidden",
                    opname,
                    describe(callable)
                ),
                None,
            ));
        }
        let item = |i: usize| args.tuple_get(i);
        match kind {
            Kind::Plain => Ok(()),
            Kind::Reconstructor | Kind::NewObj => {
                let roles: &[&str] = if kind == Kind::Reconstructor {
                    &["class", "base"]
                } else {
                    &["class"]
                };
                for (i, role) in roles.iter().enumerate() {
                    let allowed_class = item(i).is_some_and(|cls| {
                        cls.is_type()
                            && self
                                .resolved
                                .try_borrow()
                                .is_ok_and(|resolved| resolved.kind_of(&cls).is_some())
                    });
                    if !allowed_class {
                        let what = match item(i) {
                            Some(cls) => describe(&cls),
                            None => String::from("nothing"),
                        };
                        return Err(forbidden(
                            format_args!(
                                "{} of {} with {} as its {} is forbidden: the {} must be named by an allowed global",
                                opname,
                                describe(callable),
                                what,
                                role,
                                role
                            ),
                            None,
                        ));
                    }
                }
                Ok(())
            }
            Kind::TextCodec => {
                let builtin_codec = match item(1) {
                    None => true,
                    Some(encoding) => {
                        encoding.is_exact_type(types::str())
                            && encoding
                                .str_utf8()
                                .is_ok_and(|name| BUILTIN_CODECS.contains(&name))
                    }
                };
                if builtin_codec {
                    if let (Some(encoding), Ok(mut resolved)) =
                        (item(1), self.resolved.try_borrow_mut())
                    {
                        resolved.accepted_encoding = Some(encoding);
                    }
                    return Ok(());
                }
                Err(forbidden(
                    format_args!(
                        "{} of {} with an encoding other than latin-1, utf-8 or ascii is forbidden",
                        opname,
                        describe(callable)
                    ),
                    None,
                ))
            }
        }
    }

    /// Under an allow-list, refuses to change (BUILD) or fill (APPEND(S), SETITEM(S), ADDITEMS)
    /// an object an allowed name resolved to: a class, function or module is not pickled data.
    #[inline]
    pub(super) fn guard_target(&self, opname: &str, target: &Obj) -> PyResult<()> {
        if self.settings.allow.is_none() {
            return Ok(());
        }
        self.guard_target_restricted(opname, target)
    }

    #[inline(never)]
    fn guard_target_restricted(&self, opname: &str, target: &Obj) -> PyResult<()> {
        if self
            .resolved
            .try_borrow()
            .map_err(|_| busy())?
            .kind_of(target)
            .is_none()
        {
            return Ok(());
        }
        Err(forbidden(
            format_args!("{} on global {} is forbidden", opname, describe(target)),
            None,
        ))
    }
}
