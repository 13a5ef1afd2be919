import CXMLSec

/// SAML's namespaces, compared as exact strings.
enum Namespace {
    static let protocol_ = "urn:oasis:names:tc:SAML:2.0:protocol"
    static let assertion = "urn:oasis:names:tc:SAML:2.0:assertion"
    static let metadata = "urn:oasis:names:tc:SAML:2.0:metadata"
    static let dsig = "http://www.w3.org/2000/09/xmldsig#"
    static let xmlenc = "http://www.w3.org/2001/04/xmlenc#"
}

/// Why a document could not be read at all.
enum XMLReadFailure: Error, Equatable {
    case doctype
    case notWellFormed
}

/// A parsed document, freed with its owner. Parsing is strict (XML_PARSE_NONET, no entity
/// substitution, no DTD loading, any DOCTYPE refused before an entity can be declared).
final class XMLTree {
    let document: xmlDocPtr

    init(parsing bytes: [UInt8]) throws(XMLReadFailure) {
        guard !bytes.isEmpty, bytes.count < Int(Int32.max) else { throw .notWellFormed }
        var sawDoctype: Int32 = 0
        let parsed = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { base in
                tessera_parse_strict(base, Int32(buffer.count), &sawDoctype)
            }
        }
        guard let parsed else { throw sawDoctype != 0 ? .doctype : .notWellFormed }
        document = parsed
    }

    deinit { xmlFreeDoc(document) }

    var root: XMLElement? {
        guard let node = xmlDocGetRootElement(document) else { return nil }
        return XMLElement(node: node)
    }
}

/// An element of an `XMLTree`, valid while the tree lives (never stored beyond one operation).
struct XMLElement: Equatable {
    let node: xmlNodePtr

    var localName: String { String(cString: node.pointee.name) }
    var namespace: String? { node.pointee.ns.flatMap { $0.pointee.href }.map { String(cString: $0) } }

    func `is`(_ name: String, in namespace: String) -> Bool { localName == name && self.namespace == namespace }

    /// Element children, in order.
    var children: [XMLElement] {
        var result: [XMLElement] = []
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE { result.append(XMLElement(node: current)) }
            cursor = current.pointee.next
        }
        return result
    }

    func children(_ name: String, in namespace: String) -> [XMLElement] { children.filter { $0.is(name, in: namespace) } }

    func child(_ name: String, in namespace: String) -> XMLElement? { children(name, in: namespace).first }

    var parent: XMLElement? {
        guard let up = node.pointee.parent, up.pointee.type == XML_ELEMENT_NODE else { return nil }
        return XMLElement(node: up)
    }

    /// Every element below this one (not itself), depth first.
    func descendants(where matches: (XMLElement) -> Bool) -> [XMLElement] {
        var found: [XMLElement] = []
        var stack = children.reversed() as [XMLElement]
        while let next = stack.popLast() {
            if matches(next) { found.append(next) }
            stack.append(contentsOf: next.children.reversed())
        }
        return found
    }

    /// An attribute without a namespace (SAML's own attributes never have one).
    func attribute(_ name: String) -> String? {
        guard let value = xmlGetNoNsProp(node, name) else { return nil }
        defer { tessera_xml_free(value) }
        return String(cString: value)
    }

    /// The whole text content: every text and CDATA descendant joined, comments and processing
    /// instructions skipped — so a comment inside a value can never cut it short (the signed,
    /// canonical form without comments is exactly this text).
    var text: String {
        guard let value = xmlNodeGetContent(node) else { return "" }
        defer { tessera_xml_free(value) }
        return String(cString: value)
    }

    var hasElementChildren: Bool { !children.isEmpty }
}
