//! Checks that a parsed BTF blob is sane before anything walks it: ours (sizes, names,
//! decoders) or libbpf's C (`btf_dump`, CO-RE relocations), which trusts it and crashes on
//! types that refer to themselves or have no alignment.
//!
//! What is checked, each failure naming the type id:
//! - the string table starts and ends with NUL; every name offset lies inside it;
//! - every referenced type id exists, and refers to a kind that makes sense there (a member
//!   is a complete type, a FUNC has a FUNC_PROTO, a DATASEC holds VARs and FUNCs, ...);
//! - sizes: INT 1/2/4/8/16 bytes with its bits inside, ENUM 1/2/4/8, FLOAT 2/4/8/12/16,
//!   members and bitfields inside their struct, arrays no larger than 4 GiB;
//! - no reference cycle except through a pointer to a named struct/union/enum (how C spells
//!   a recursive type), and no chain of references deeper than [`MAX_DEPTH`].
//!
//! The checks follow the kernel's own BTF verifier where it matters for safety; anything the
//! kernel accepts from clang or pahole passes here too.

use super::{Btf, BtfError, Data, Kind, Type};

/// Longest chain of type references accepted, counting every typedef, qualifier, pointer and
/// member on the way (the BTF of kernel 6.18 reaches 40; libbpf's recursion at this depth
/// needs a few tens of KiB of stack).
pub const MAX_DEPTH: u32 = 256;

fn invalid(id: u32, t: &Type, reason: impl Into<String>) -> BtfError {
    BtfError::Invalid {
        id,
        kind: t.kind.name(),
        reason: reason.into(),
    }
}

/// What a reference may point at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A type with a size: not void, an incomplete struct, a function or a variable.
    Complete,
    /// What a pointer, typedef or qualifier may name: any type, void or a function type.
    AnyType,
    /// A function's return type: any type but a function type.
    Return,
    FuncProto,
    /// A DATASEC entry.
    VarOrFunc,
    /// What a DECL_TAG may annotate.
    Tagged,
    /// An array's index type: any existing id.
    Exists,
}

impl Btf {
    /// Checks the whole blob (see the module docs). `parse` calls it; [`Btf::parse_records`]
    /// does not.
    pub fn validate(&self) -> Result<(), BtfError> {
        if self.strings.first().is_some_and(|&b| b != 0)
            || self.strings.last().is_some_and(|&b| b != 0)
        {
            return Err(BtfError::BadStringTable);
        }
        for (id, t) in self.iter() {
            self.check_type(id, t)?;
        }
        self.check_graph()?;
        // Sizes last: they follow references, which are now known to end.
        for (id, t) in self.iter() {
            self.check_sizes(id, t)?;
        }
        Ok(())
    }

    fn check_name(&self, id: u32, t: &Type, off: u32, what: &str) -> Result<(), BtfError> {
        if off as usize >= self.strings.len().max(1) {
            return Err(invalid(
                id,
                t,
                format!("{what} offset {off} is outside the string table"),
            ));
        }
        Ok(())
    }

    /// The type at the end of typedefs and qualifiers (`None` for void, a missing id, or a
    /// chain that does not end soon).
    fn resolved(&self, id: u32) -> Option<(u32, &Type)> {
        let mut id = id;
        for _ in 0..=MAX_DEPTH {
            let t = self.get(id).ok()?;
            match t.kind {
                Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                    id = t.size_or_type
                }
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// The kind at the end of typedefs and qualifiers.
    fn resolved_kind(&self, id: u32) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        self.resolved(id).map(|(_, t)| t.kind)
    }

    /// A member, element or parameter passed by value must end in a type with a size.
    fn check_complete(&self, id: u32, t: &Type, to: u32, what: &str) -> Result<(), BtfError> {
        match self.resolved_kind(to) {
            Some(
                Kind::Int
                | Kind::Ptr
                | Kind::Array
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float,
            ) => Ok(()),
            other => Err(invalid(
                id,
                t,
                format!(
                    "{what} (type id {to}) is {}, which has no size",
                    other.map_or("void", Kind::name)
                ),
            )),
        }
    }

    fn check_ref(
        &self,
        id: u32,
        t: &Type,
        to: u32,
        want: Want,
        what: &str,
    ) -> Result<(), BtfError> {
        if to == 0 {
            return match want {
                Want::AnyType | Want::Return | Want::Exists => Ok(()),
                _ => Err(invalid(id, t, format!("{what} is void"))),
            };
        }
        let target = self.get(to).map_err(|_| {
            invalid(
                id,
                t,
                format!("{what} refers to type id {to}, which does not exist"),
            )
        })?;
        let k = target.kind;
        let ok = match want {
            Want::Exists => true,
            Want::AnyType => !matches!(k, Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag),
            // Where typedefs and qualifiers end is checked once cycles are ruled out.
            Want::Complete => !matches!(
                k,
                Kind::Func
                    | Kind::FuncProto
                    | Kind::Var
                    | Kind::Datasec
                    | Kind::DeclTag
                    | Kind::Fwd
            ),
            Want::Return => !matches!(
                k,
                Kind::Func | Kind::FuncProto | Kind::Var | Kind::Datasec | Kind::DeclTag
            ),
            Want::FuncProto => k == Kind::FuncProto,
            Want::VarOrFunc => matches!(k, Kind::Var | Kind::Func),
            Want::Tagged => matches!(
                k,
                Kind::Struct | Kind::Union | Kind::Func | Kind::Var | Kind::Typedef
            ),
        };
        if !ok {
            return Err(invalid(
                id,
                t,
                format!(
                    "{what} refers to type id {to}, a {}, which cannot be used there",
                    k.name()
                ),
            ));
        }
        Ok(())
    }

    fn check_type(&self, id: u32, t: &Type) -> Result<(), BtfError> {
        self.check_name(id, t, t.name_off, "name")?;
        let st = t.size_or_type;
        match (t.kind, &t.data) {
            (
                Kind::Int,
                Data::Int {
                    bit_offset, bits, ..
                },
            ) => {
                if ![1, 2, 4, 8, 16].contains(&st) {
                    return Err(invalid(
                        id,
                        t,
                        format!("size {st} (an int has 1, 2, 4, 8 or 16 bytes)"),
                    ));
                }
                if u32::from(*bit_offset) + u32::from(*bits) > st * 8 {
                    return Err(invalid(
                        id,
                        t,
                        format!("{bits} bits at bit {bit_offset} do not fit its {st} bytes"),
                    ));
                }
            }
            (Kind::Enum | Kind::Enum64, Data::Enum(values)) => {
                if ![1, 2, 4, 8].contains(&st) {
                    return Err(invalid(
                        id,
                        t,
                        format!("size {st} (an enum has 1, 2, 4 or 8 bytes)"),
                    ));
                }
                for v in values {
                    self.check_name(id, t, v.name_off, "value name")?;
                }
            }
            (Kind::Float, _) => {
                if ![2, 4, 8, 12, 16].contains(&st) {
                    return Err(invalid(
                        id,
                        t,
                        format!("size {st} (a float has 2, 4, 8, 12 or 16 bytes)"),
                    ));
                }
            }
            (Kind::Ptr, _) => self.check_ref(id, t, st, Want::AnyType, "the pointee")?,
            (Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag, _) => {
                self.check_ref(id, t, st, Want::AnyType, "the target")?
            }
            (Kind::Array, Data::Array { elem, index, .. }) => {
                self.check_ref(id, t, *elem, Want::Complete, "the element type")?;
                self.check_ref(id, t, *index, Want::Exists, "the index type")?;
            }
            (Kind::Struct | Kind::Union, Data::Members(members)) => {
                for (i, m) in members.iter().enumerate() {
                    self.check_name(id, t, m.name_off, "member name")?;
                    let what = format!("member {i}");
                    self.check_ref(id, t, m.type_id, Want::Complete, &what)?;
                    if m.bitfield_size > 128 {
                        return Err(invalid(
                            id,
                            t,
                            format!(
                                "{what} is a bitfield of {} bits (at most 128)",
                                m.bitfield_size
                            ),
                        ));
                    }
                }
            }
            (Kind::Func, _) => {
                if t.vlen_extra > 2 {
                    return Err(invalid(id, t, format!("unknown linkage {}", t.vlen_extra)));
                }
                self.check_ref(id, t, st, Want::FuncProto, "the prototype")?;
            }
            (Kind::FuncProto, Data::Params(params)) => {
                self.check_ref(id, t, st, Want::Return, "the return type")?;
                for (i, p) in params.iter().enumerate() {
                    self.check_name(id, t, p.name_off, "parameter name")?;
                    // `...` is a last parameter of type void without a name.
                    if p.type_id == 0 && p.name_off == 0 && i + 1 == params.len() {
                        continue;
                    }
                    self.check_ref(id, t, p.type_id, Want::Complete, &format!("parameter {i}"))
                        .or_else(|e| match self.resolved_kind(p.type_id) {
                            // A by-value parameter of an incomplete struct is legal in a prototype.
                            Some(Kind::Fwd) => Ok(()),
                            _ => Err(e),
                        })?;
                }
            }
            (Kind::Var, Data::Var { linkage }) => {
                if *linkage > 2 {
                    return Err(invalid(id, t, format!("unknown linkage {linkage}")));
                }
                self.check_ref(id, t, st, Want::Complete, "the type")
                    .or_else(|e| match self.resolved_kind(st) {
                        // `extern struct foo x __ksym;` may name an incomplete struct.
                        Some(Kind::Fwd) => Ok(()),
                        _ => Err(e),
                    })?;
            }
            (Kind::Datasec, Data::Datasec(vars)) => {
                for (i, v) in vars.iter().enumerate() {
                    self.check_ref(id, t, v.type_id, Want::VarOrFunc, &format!("entry {i}"))?;
                }
            }
            (Kind::DeclTag, Data::DeclTag { component_idx }) => {
                self.check_ref(id, t, st, Want::Tagged, "the tagged type")?;
                let target = self.get(st)?;
                let parts = match (&target.kind, &target.data) {
                    (Kind::Struct | Kind::Union, Data::Members(m)) => m.len(),
                    (Kind::Func, _) => match self.get(target.size_or_type).map(|p| &p.data) {
                        Ok(Data::Params(p)) => p.len(),
                        _ => 0,
                    },
                    _ => 0,
                };
                if *component_idx < -1 || (*component_idx >= 0 && *component_idx as usize >= parts)
                {
                    return Err(invalid(
                        id,
                        t,
                        format!("component {component_idx} does not exist in type id {st}"),
                    ));
                }
            }
            (Kind::Fwd, _) => {}
            (kind, _) => return Err(invalid(id, t, format!("malformed {} record", kind.name()))),
        }
        Ok(())
    }

    /// The references the cycle and depth checks follow. A pointer to a named struct, union or
    /// enum (directly or through typedefs) is where C allows a type to refer back to itself,
    /// and where libbpf's dumper stops too: that edge is not followed.
    fn edges(&self, t: &Type, out: &mut Vec<u32>) {
        out.clear();
        match (&t.kind, &t.data) {
            (Kind::Ptr, _) => {
                let named = self.resolved(t.size_or_type).is_some_and(|(_, x)| {
                    x.name_off != 0
                        && matches!(
                            x.kind,
                            Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd
                        )
                });
                if !named {
                    out.push(t.size_or_type);
                }
            }
            (
                Kind::Typedef
                | Kind::Const
                | Kind::Volatile
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Func
                | Kind::Var
                | Kind::DeclTag,
                _,
            ) => out.push(t.size_or_type),
            (Kind::Array, Data::Array { elem, index, .. }) => out.extend([*elem, *index]),
            (_, Data::Members(ms)) => out.extend(ms.iter().map(|m| m.type_id)),
            (Kind::FuncProto, Data::Params(ps)) => {
                out.push(t.size_or_type);
                out.extend(ps.iter().map(|p| p.type_id));
            }
            (_, Data::Datasec(vs)) => out.extend(vs.iter().map(|v| v.type_id)),
            _ => {}
        }
        out.retain(|&id| id != 0);
    }

    /// Rejects reference cycles and chains deeper than [`MAX_DEPTH`]; iterative, so a long
    /// chain cannot exhaust our stack either.
    fn check_graph(&self) -> Result<(), BtfError> {
        // Per type: 0 unvisited, u32::MAX on the current path, else 1 + depth below it.
        let n = self.types.len();
        let mut depth = vec![0u32; n + 1];
        const ON_PATH: u32 = u32::MAX;
        let mut stack: Vec<(u32, Vec<u32>, usize)> = Vec::new();
        let mut scratch = Vec::new();
        for root in 1..=n as u32 {
            if depth[root as usize] != 0 {
                continue;
            }
            depth[root as usize] = ON_PATH;
            self.edges(&self.types[root as usize - 1], &mut scratch);
            stack.push((root, scratch.clone(), 0));
            while let Some((id, succ, next)) = stack.last_mut() {
                let id = *id;
                if let Some(&s) = succ.get(*next) {
                    *next += 1;
                    match depth[s as usize] {
                        0 => {
                            depth[s as usize] = ON_PATH;
                            self.edges(&self.types[s as usize - 1], &mut scratch);
                            stack.push((s, scratch.clone(), 0));
                        }
                        ON_PATH => {
                            let t = &self.types[id as usize - 1];
                            return Err(invalid(
                                id,
                                t,
                                if s == id {
                                    "it refers to itself".to_string()
                                } else {
                                    format!("it refers back to type id {s} in a cycle (only a pointer to a named struct, union or enum may close one)")
                                },
                            ));
                        }
                        _ => {}
                    }
                    continue;
                }
                let below = succ.iter().map(|&s| depth[s as usize]).max().unwrap_or(0);
                let d = below + 1;
                if d > MAX_DEPTH {
                    let t = &self.types[id as usize - 1];
                    return Err(invalid(
                        id,
                        t,
                        format!("its chain of type references is deeper than {MAX_DEPTH}"),
                    ));
                }
                depth[id as usize] = d;
                stack.pop();
            }
        }
        Ok(())
    }

    fn check_sizes(&self, id: u32, t: &Type) -> Result<(), BtfError> {
        match (&t.kind, &t.data) {
            (Kind::Array, Data::Array { elem, len, .. }) => {
                self.check_complete(id, t, *elem, "the element type")?;
                let total = self.size_of(*elem)?.checked_mul(u64::from(*len));
                if total.is_none_or(|s| s > u64::from(u32::MAX)) {
                    return Err(invalid(
                        id,
                        t,
                        format!("{len} elements make it larger than 4 GiB"),
                    ));
                }
            }
            (Kind::Struct | Kind::Union, Data::Members(members)) => {
                let bits = u64::from(t.size_or_type) * 8;
                for (i, m) in members.iter().enumerate() {
                    self.check_complete(id, t, m.type_id, &format!("member {i}"))?;
                    let target = self.resolved_kind(m.type_id);
                    let (start, width) = if m.bitfield_size > 0 {
                        if !matches!(target, Some(Kind::Int | Kind::Enum | Kind::Enum64)) {
                            return Err(invalid(
                                id,
                                t,
                                format!("member {i} is a bitfield of a type that is neither an int nor an enum"),
                            ));
                        }
                        (u64::from(m.bit_offset), u64::from(m.bitfield_size))
                    } else {
                        if m.bit_offset % 8 != 0 && target != Some(Kind::Int) {
                            return Err(invalid(
                                id,
                                t,
                                format!("member {i} starts at bit {}, not on a byte", m.bit_offset),
                            ));
                        }
                        (u64::from(m.bit_offset), self.size_of(m.type_id)? * 8)
                    };
                    if start + width > bits {
                        return Err(invalid(
                            id,
                            t,
                            format!(
                                "member {i} (bits {start}..{}) lies outside its {} bytes",
                                start + width,
                                t.size_or_type
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw BTF from records; strings: "\0int\0s\0a\0" (offsets 1 "int", 5 "s", 7 "a").
    fn blob(records: &[Vec<u32>]) -> Vec<u8> {
        let strings = b"\0int\0s\0a\0";
        let types: Vec<u8> = records
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }
    fn info(kind: Kind, vlen: u32) -> u32 {
        ((kind as u32) << 24) | vlen
    }
    fn int(size: u32) -> Vec<u32> {
        vec![1, info(Kind::Int, 0), size, size * 8]
    }
    fn refer(kind: Kind, name: u32, to: u32) -> Vec<u32> {
        vec![name, info(kind, 0), to]
    }
    fn strukt(name: u32, size: u32, members: &[(u32, u32)]) -> Vec<u32> {
        let mut r = vec![name, info(Kind::Struct, members.len() as u32), size];
        for &(ty, bit_off) in members {
            r.extend([7, ty, bit_off]);
        }
        r
    }
    fn bad_id(records: &[Vec<u32>]) -> u32 {
        match Btf::parse(&blob(records)) {
            Err(BtfError::Invalid { id, .. }) => id,
            other => panic!("expected a type id error, got {other:?}"),
        }
    }

    #[test]
    fn kernel_btf_is_valid() {
        let raw = std::fs::read("/sys/kernel/btf/vmlinux").expect("kernel BTF");
        Btf::parse(&raw).unwrap();
    }

    #[test]
    fn a_list_through_a_pointer_to_a_named_struct_is_valid() {
        // struct s { int a; struct s *next; }; typedef struct s s; struct s2 { s *p; }
        Btf::parse(&blob(&[
            int(4),
            strukt(5, 16, &[(1, 0), (3, 64)]),
            refer(Kind::Ptr, 0, 2),
            refer(Kind::Typedef, 5, 2),
            refer(Kind::Ptr, 0, 4),
            strukt(7, 8, &[(5, 0)]),
        ]))
        .unwrap();
    }

    #[test]
    fn zero_sized_int_is_refused() {
        assert_eq!(bad_id(&[int(0)]), 1);
        assert_eq!(bad_id(&[int(4), vec![1, info(Kind::Enum, 0), 0]]), 2);
    }

    #[test]
    fn cycles_are_refused() {
        // typedef loop
        assert_eq!(
            bad_id(&[refer(Kind::Typedef, 5, 2), refer(Kind::Typedef, 7, 1)]),
            2
        );
        // a pointer to itself
        assert_eq!(bad_id(&[refer(Kind::Ptr, 0, 1)]), 1);
        // a struct holding itself by value
        assert_eq!(bad_id(&[int(4), strukt(5, 4, &[(2, 0)])]), 2);
        // an array of itself
        assert_eq!(bad_id(&[vec![0, info(Kind::Array, 0), 0, 1, 1, 4]]), 1);
        // a pointer to an anonymous struct that holds it
        assert_eq!(
            bad_id(&[strukt(0, 8, &[(2, 0)]), refer(Kind::Ptr, 0, 1)]),
            2
        );
    }

    #[test]
    fn missing_ids_are_refused() {
        assert_eq!(bad_id(&[refer(Kind::Typedef, 5, 99)]), 1);
        assert_eq!(bad_id(&[int(4), strukt(5, 4, &[(9, 0)])]), 2);
    }

    #[test]
    fn members_outside_their_struct_are_refused() {
        assert_eq!(bad_id(&[int(4), strukt(5, 4, &[(1, 32)])]), 2);
    }

    #[test]
    fn deep_chains_are_refused_without_recursion() {
        let mut records = vec![int(4)];
        for id in 1..100_000u32 {
            records.push(refer(Kind::Const, 0, id));
        }
        let id = bad_id(&records);
        assert!(id > MAX_DEPTH, "{id}");
    }
}
