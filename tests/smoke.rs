mod common;
use common::*;

#[test]
fn mount_write_read_unmount() {
    let m = Mount::new();
    std::fs::write(m.join("hello"), b"world").unwrap();
    assert_eq!(std::fs::read(m.join("hello")).unwrap(), b"world");
    assert_eq!(descendants(m.path()), 1);
    let status = m.unmount();
    assert!(status.success());
}
