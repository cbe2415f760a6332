//! The unpickler's memo: dense indices in a vector, forged huge ones in a map.

use super::*;
use crate::ffi;
use crate::testing::with_python;

fn int(i: i64) -> Obj {
    ffi::new_int(1 << 40 | i).unwrap()
}

#[test]
fn in_order_puts_stay_dense() {
    with_python(|_| {
        let mut memo = Memo::default();
        for i in 0..100 {
            assert_eq!(memo.next_index(), i);
            assert!(memo.put(i, int(i as i64)).unwrap().is_none());
        }
        assert!(memo.sparse.is_empty());
        assert_eq!(memo.dense.len(), 100);
        assert_eq!(memo.get(42).unwrap().as_long().unwrap(), 1 << 40 | 42);
        assert!(memo.get(100).is_none());
    })
}

#[test]
fn a_huge_index_goes_to_the_map_and_memory_stays_small() {
    with_python(|_| {
        let mut memo = Memo::default();
        memo.put(0, int(0)).unwrap();
        memo.put(1 << 40, int(1)).unwrap();
        memo.put(usize::MAX, int(2)).unwrap();
        assert_eq!(memo.dense.len(), 1);
        assert_eq!(memo.sparse.len(), 2);
        assert_eq!(memo.next_index(), 3);
        assert_eq!(memo.get(1 << 40).unwrap().as_long().unwrap(), 1 << 40 | 1);
        assert_eq!(
            memo.get(usize::MAX).unwrap().as_long().unwrap(),
            1 << 40 | 2
        );
        // Within the slack, a gap is still dense.
        memo.put(DENSE_SLACK, int(3)).unwrap();
        assert_eq!(memo.dense.len(), DENSE_SLACK + 1);
        let mut indices: Vec<usize> = memo.entries().map(|(i, _)| i).collect();
        indices.sort_unstable();
        assert_eq!(indices, [0, DENSE_SLACK, 1 << 40, usize::MAX]);
    })
}

#[test]
fn a_put_over_an_index_returns_the_old_object() {
    with_python(|_| {
        let mut memo = Memo::default();
        memo.put(0, int(0)).unwrap();
        memo.put(5000, int(1)).unwrap();
        let old = memo.put(0, int(2)).unwrap().unwrap();
        assert_eq!(old.as_long().unwrap(), 1 << 40);
        let old = memo.put(5000, int(3)).unwrap().unwrap();
        assert_eq!(old.as_long().unwrap(), 1 << 40 | 1);
        assert_eq!(memo.next_index(), 2);
        let copy = memo.try_clone().unwrap();
        assert_eq!(copy.get(5000).unwrap().as_long().unwrap(), 1 << 40 | 3);
    })
}
