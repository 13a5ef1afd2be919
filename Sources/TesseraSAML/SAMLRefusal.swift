/// Why a SAML response was refused: the check that failed (in the order the ACS runs them) and
/// general words about it. Never carries any content of the response.
public struct SAMLRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Check: String, Sendable, CaseIterable {
        case size = "Size"
        case form = "Form"
        case xml = "XML"
        case doctype = "DOCTYPE"
        case status = "Status"
        case destination = "Destination"
        case assertionCount = "AssertionCount"
        case decryption = "Decryption"
        case signature = "Signature"
        case issuer = "Issuer"
        case audience = "Audience"
        case conditions = "Conditions"
        case subjectConfirmation = "SubjectConfirmation"
        case inResponseTo = "InResponseTo"
        case unsolicited = "Unsolicited"
        case replay = "Replay"
        case subject = "Subject"
    }

    public let check: Check
    public let reason: String

    public init(_ check: Check, _ reason: String) {
        self.check = check
        self.reason = reason
    }

    /// The message could not be read at all (400), as opposed to a readable message that is not
    /// trusted (403).
    public var isMalformed: Bool { [.size, .form, .xml, .doctype].contains(check) }

    public var description: String { "\(check.rawValue): \(reason)" }
}
