//! The pickler's memo table: identity -> index, across growth and replacement.

use super::*;
use crate::ffi;
use crate::testing::with_python;

fn objects(n: usize) -> Vec<Obj> {
    // Distinct objects (large ints are never cached by the interpreter).
    (0..n)
        .map(|i| ffi::new_int(1 << 40 | i as i64).unwrap())
        .collect()
}

#[test]
fn finds_every_object_it_was_given_through_growth() {
    with_python(|_| {
        let objs = objects(5000);
        let mut memo = Memo::new();
        for (i, o) in objs.iter().enumerate() {
            assert_eq!(memo.get(o), None);
            memo.insert(o, i).unwrap();
            assert_eq!(memo.len(), i + 1);
        }
        for (i, o) in objs.iter().enumerate() {
            assert_eq!(memo.get(o), Some(i));
        }
        // The load factor stays under one half.
        assert!(memo.slots.len() >= 2 * memo.len());
        let order: Vec<usize> = memo.entries().map(|(_, v)| v).collect();
        assert_eq!(order, (0..5000).collect::<Vec<_>>());
        assert!(memo.entries().zip(&objs).all(|((o, _), p)| o.is(p)));
    })
}

#[test]
fn inserting_again_replaces_the_index() {
    with_python(|_| {
        let objs = objects(3);
        let mut memo = Memo::new();
        memo.insert(&objs[0], 0).unwrap();
        memo.insert(&objs[1], 1).unwrap();
        memo.insert(&objs[0], 7).unwrap();
        assert_eq!(memo.len(), 2);
        assert_eq!(memo.get(&objs[0]), Some(7));
        assert_eq!(memo.get(&objs[2]), None);
    })
}

#[test]
fn a_copy_is_independent() {
    with_python(|_| {
        let objs = objects(40);
        let mut memo = Memo::new();
        for (i, o) in objs.iter().take(20).enumerate() {
            memo.insert(o, i).unwrap();
        }
        let mut copy = memo.try_clone().unwrap();
        for (i, o) in objs.iter().enumerate().skip(20) {
            copy.insert(o, i).unwrap();
        }
        assert_eq!((memo.len(), copy.len()), (20, 40));
        assert_eq!(memo.get(&objs[30]), None);
        assert_eq!(copy.get(&objs[30]), Some(30));
        assert_eq!(copy.get(&objs[3]), Some(3));
    })
}
