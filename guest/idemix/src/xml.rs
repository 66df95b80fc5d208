//! Small helpers over `roxmltree` for the scheme's XML files: children by local name (namespaces
//! and unknown elements ignored), trimmed text.

use roxmltree::{Document, Node};

use crate::bigint::Int;
use crate::error::{Result, config};

pub fn parse(text: &str) -> Result<Document<'_>> {
    Document::parse(text).map_err(|e| config(format!("XML: {e}")))
}

pub fn expect_name(node: Node, name: &str) -> Result<()> {
    if node.tag_name().name() == name {
        Ok(())
    } else {
        Err(config(format!(
            "expected <{name}>, found <{}>",
            node.tag_name().name()
        )))
    }
}

pub fn find<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>> {
    find(node, name).ok_or_else(|| config(format!("<{}> has no <{name}>", node.tag_name().name())))
}

pub fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

pub fn child_text<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str> {
    Ok(text(child(node, name)?))
}

pub fn child_u64(node: Node, name: &str) -> Result<u64> {
    let t = child_text(node, name)?;
    t.parse()
        .map_err(|_| config(format!("<{name}> is not a number: {t:?}")))
}

pub fn int_text(node: Node) -> Result<Int> {
    let t = text(node);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(config(format!(
            "<{}> is not a decimal integer",
            node.tag_name().name()
        )));
    }
    t.parse().map_err(|_| config("bad decimal integer"))
}

pub fn child_int(node: Node, name: &str) -> Result<Int> {
    int_text(child(node, name)?)
}

/// True when the child exists with text `true` (case-insensitive).
pub fn child_flag(node: Node, name: &str) -> bool {
    find(node, name).is_some_and(|c| text(c).eq_ignore_ascii_case("true"))
}
