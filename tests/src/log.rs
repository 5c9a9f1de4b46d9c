//! Reading a console log: one VM's lines, and failing with the whole log.

/// The lines VM output tagged `tag` (`"name | "`) carries, without the tag
/// and trailing white space.
pub fn vm_lines<'a>(log: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> {
    log.lines()
        .filter_map(move |l| l.split_once(tag).map(|(_, rest)| rest.trim_end()))
}

/// The part of a growing log that ends in a newline: a line still arriving is cut off.
pub fn complete(log: &str) -> &str {
    &log[..log.rfind('\n').map_or(0, |i| i + 1)]
}

/// Fails the test with `what`, followed by the whole console log.
pub fn fail(what: &str, log: &str) -> ! {
    panic!("{what}\n----- console log -----\n{log}\n----- end of log -----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_one_vm() {
        let log = "  rtos | a \r\nprobe | b\r\n[ 0.1] cpu0 INFO x\nprobe | c";
        assert_eq!(vm_lines(log, "probe | ").collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn a_line_still_arriving_is_not_complete() {
        assert_eq!(complete("a\n  rtos | rtos-stats: periods=243"), "a\n");
        assert_eq!(complete("a\nb\n"), "a\nb\n");
        assert_eq!(complete("partial"), "");
    }
}
