use super::*;

#[test]
fn get_info_request_is_the_bare_command_byte() {
    assert_eq!(encode_request(&GetInfo), vec![0x04]);
}
