public import Foundation
import CXMLSec
public import TesseraCore
import TesseraJOSE

/// The tenant's trust in one IdP, ready for verification: its entityID, the keys of its metadata
/// certificates (built once), and what the tenant requires of signatures.
public struct IdPTrust: Sendable {
    public let entityID: String
    let keys: [TrustedKey]
    public let signedPart: SAMLProviderConfig.SignedPart
    public let allowSHA1: Bool

    public init(metadata: IdPMetadata, signedPart: SAMLProviderConfig.SignedPart, allowSHA1: Bool) throws(SAMLMetadataError) {
        var keys: [TrustedKey] = []
        for der in metadata.signingCertificates {
            guard let key = TrustedKey(certificate: der) else { throw SAMLMetadataError("a signing certificate cannot be read") }
            keys.append(key)
        }
        entityID = metadata.entityID
        self.keys = keys
        self.signedPart = signedPart
        self.allowSHA1 = allowSHA1
    }
}

/// The SP's private key for encrypted assertions, read once.
public struct SAMLDecryptionKey: Sendable {
    let key: TrustedKey

    public init(privateKeyPEM: String) throws(SAMLMetadataError) {
        guard let key = TrustedKey(privatePEM: Array(privateKeyPEM.utf8)) else {
            throw SAMLMetadataError("the SP decryption key cannot be read")
        }
        self.key = key
    }
}

/// This broker as the service provider of one tenant.
public struct ServiceProviderEndpoints: Sendable, Hashable {
    public let entityID: String
    public let acsURL: String

    public init(issuer: String, tenant: TenantID) {
        entityID = "\(issuer)/sso/\(tenant.rawValue)/saml/metadata"
        acsURL = "\(issuer)/sso/\(tenant.rawValue)/saml/acs"
    }
}

/// What a verified response says, read only from the node the verified signature covers.
public struct VerifiedAssertion: Sendable, Equatable {
    public let assertionID: String
    public let claims: SAMLSubjectClaims
    /// Nil for an unsolicited (IdP-initiated) response.
    public let inResponseTo: String?
    /// The assertion ID must stay single-use until then (it cannot be accepted afterwards).
    public let replayUntil: Date
    /// The end of the assertion's own validity (confirmation and conditions), without skew.
    public let validUntil: Date
    /// The IdP's bound on the session, when it sets one.
    public let sessionNotOnOrAfter: Date?
}

/// The ACS's checks of a SAML Response (HTTP-POST binding), in the order of issue 3, refusing on
/// the first failure: size; strict parse; Status; Destination; exactly one assertion (decrypted
/// when encrypted); signatures by a metadata certificate over the very nodes read; Issuer;
/// Audience; validity window; bearer confirmation; InResponseTo or the unsolicited opt-in.
/// Replay of the assertion ID is the caller's (it needs the shared store).
public struct SAMLResponseVerifier: Sendable {
    public static let maximumEncodedSize = 256 * 1024
    public static let maximumDecodedSize = 192 * 1024
    static let bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    static let success = "urn:oasis:names:tc:SAML:2.0:status:Success"
    static let entityFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

    public let serviceProvider: ServiceProviderEndpoints
    let decryptionKey: TrustedKey?
    public let clockSkew: TimeInterval
    /// A bearer assertion valid longer than this is refused: its ID would have to be remembered
    /// for as long.
    public let maximumValidity: TimeInterval = 24 * 3600

    public init(serviceProvider: ServiceProviderEndpoints, decryptionKey: SAMLDecryptionKey?, clockSkew: TimeInterval = 60) {
        self.serviceProvider = serviceProvider
        self.decryptionKey = decryptionKey?.key
        self.clockSkew = min(max(clockSkew, 0), 300)
    }

    public func verify(
        encodedResponse: String, idp: IdPTrust, pendingRequestID: String?, allowUnsolicited: Bool, now: Date
    ) throws(SAMLRefusal) -> VerifiedAssertion {
        do {
            try XMLSecurity.ready()
        } catch {
            throw SAMLRefusal(.xml, "the XML security library is unavailable")
        }
        // Size, then base64 (line breaks tolerated, nothing else).
        guard encodedResponse.utf8.count <= Self.maximumEncodedSize else { throw SAMLRefusal(.size, "the response is too large") }
        guard let decoded = Base64Text.decode(encodedResponse) else { throw SAMLRefusal(.form, "SAMLResponse is not base64") }
        guard decoded.count <= Self.maximumDecodedSize else { throw SAMLRefusal(.size, "the decoded response is too large") }

        let tree: XMLTree
        do {
            tree = try XMLTree(parsing: Array(decoded))
        } catch .doctype {
            throw SAMLRefusal(.doctype, "a DOCTYPE is not allowed in a SAML message")
        } catch {
            throw SAMLRefusal(.xml, "the response is not well-formed XML")
        }
        guard let response = tree.root, response.is("Response", in: Namespace.protocol_) else {
            throw SAMLRefusal(.xml, "the message is not a samlp:Response")
        }
        guard response.attribute("Version") == "2.0" else { throw SAMLRefusal(.xml, "the response is not SAML 2.0") }

        // Status.
        let code = response.child("Status", in: Namespace.protocol_)?.child("StatusCode", in: Namespace.protocol_)?.attribute("Value")
        guard code == Self.success else { throw SAMLRefusal(.status, "the identity provider did not report success") }

        // Destination: required (the response is signed or carries a signed assertion) and exact.
        guard response.attribute("Destination") == serviceProvider.acsURL else {
            throw SAMLRefusal(.destination, "the response is not addressed to this ACS")
        }

        // Exactly one assertion, plain or encrypted, anywhere in the document, and it is the
        // response's child: extra assertions are how signature wrapping hides its payload.
        let anyAssertions = response.descendants {
            $0.namespace == Namespace.assertion && ($0.localName == "Assertion" || $0.localName == "EncryptedAssertion")
        }
        guard anyAssertions.count == 1, let holder = anyAssertions.first, holder.parent == response else {
            throw SAMLRefusal(.assertionCount, "the response must carry exactly one assertion")
        }

        // IDs: every element's `ID`, registered once; a duplicate refuses the whole message.
        guard registerIDs(in: response, of: tree) else {
            throw SAMLRefusal(.signature, "the message has duplicate IDs")
        }

        // The response signature covers the message as received (before any decryption).
        let responseSignatures = response.children("Signature", in: Namespace.dsig)
        guard responseSignatures.count <= 1 else { throw SAMLRefusal(.signature, "the response has more than one signature") }
        if let signature = responseSignatures.first {
            try verifySignature(signature, covering: response, tree: tree, idp: idp)
        } else if idp.signedPart != .assertion {
            throw SAMLRefusal(.signature, "the response is not signed")
        }

        let assertion: XMLElement
        if holder.localName == "EncryptedAssertion" {
            assertion = try decrypt(holder, tree: tree)
            guard registerIDs(in: assertion, of: tree) else {
                throw SAMLRefusal(.signature, "the message has duplicate IDs")
            }
        } else {
            assertion = holder
        }
        guard assertion.attribute("Version") == "2.0", let assertionID = assertion.attribute("ID"), !assertionID.isEmpty,
            assertionID.utf8.count <= 256
        else { throw SAMLRefusal(.xml, "the assertion has no ID or is not SAML 2.0") }

        let assertionSignatures = assertion.children("Signature", in: Namespace.dsig)
        guard assertionSignatures.count <= 1 else { throw SAMLRefusal(.signature, "the assertion has more than one signature") }
        if let signature = assertionSignatures.first {
            try verifySignature(signature, covering: assertion, tree: tree, idp: idp)
        } else if idp.signedPart != .response {
            throw SAMLRefusal(.signature, "the assertion is not signed")
        }

        return try checkAssertion(
            assertion, id: assertionID, response: response, recipients: [serviceProvider.acsURL], idp: idp,
            browser: BrowserBinding(pendingRequestID: pendingRequestID, allowUnsolicited: allowUnsolicited), now: now)
    }

    /// An assertion on its own, base64url (RFC 8693 §3 `saml2` subject token): the ACS's checks
    /// but the browser binding — signed by the IdP on the assertion itself, issuer, audience (this
    /// tenant's SP), validity, a bearer confirmation for one of `recipients`. Replay is the
    /// caller's, as for the ACS.
    public func verifyAssertion(encodedAssertion: String, idp: IdPTrust, recipients: [String], now: Date) throws(SAMLRefusal)
        -> VerifiedAssertion
    {
        do {
            try XMLSecurity.ready()
        } catch {
            throw SAMLRefusal(.xml, "the XML security library is unavailable")
        }
        guard encodedAssertion.utf8.count <= Self.maximumEncodedSize else { throw SAMLRefusal(.size, "the assertion is too large") }
        guard let decoded = Base64URL.decode(encodedAssertion) else { throw SAMLRefusal(.form, "the assertion is not base64url") }
        let tree: XMLTree
        do {
            tree = try XMLTree(parsing: decoded)
        } catch .doctype {
            throw SAMLRefusal(.doctype, "a DOCTYPE is not allowed in a SAML message")
        } catch {
            throw SAMLRefusal(.xml, "the assertion is not well-formed XML")
        }
        guard let assertion = tree.root, assertion.is("Assertion", in: Namespace.assertion) else {
            throw SAMLRefusal(.xml, "the token is not a saml:Assertion")
        }
        guard assertion.descendants(where: { $0.namespace == Namespace.assertion && $0.localName.hasSuffix("Assertion") }).isEmpty else {
            throw SAMLRefusal(.assertionCount, "the token must be exactly one assertion")
        }
        guard assertion.attribute("Version") == "2.0", let assertionID = assertion.attribute("ID"), !assertionID.isEmpty,
            assertionID.utf8.count <= 256
        else { throw SAMLRefusal(.xml, "the assertion has no ID or is not SAML 2.0") }
        guard registerIDs(in: assertion, of: tree) else { throw SAMLRefusal(.signature, "the message has duplicate IDs") }
        let signatures = assertion.children("Signature", in: Namespace.dsig)
        guard signatures.count == 1, let signature = signatures.first else {
            throw SAMLRefusal(.signature, "the assertion must carry one signature")
        }
        try verifySignature(signature, covering: assertion, tree: tree, idp: idp)
        return try checkAssertion(assertion, id: assertionID, response: nil, recipients: recipients, idp: idp, browser: nil, now: now)
    }

    /// The browser side of an ACS response: the request this browser is waiting for, and whether
    /// the tenant takes unsolicited responses.
    struct BrowserBinding {
        let pendingRequestID: String?
        let allowUnsolicited: Bool
    }

    /// The checks after the signatures, on the verified assertion node only.
    private func checkAssertion(
        _ assertion: XMLElement, id assertionID: String, response: XMLElement?, recipients: [String], idp: IdPTrust,
        browser: BrowserBinding?, now: Date
    ) throws(SAMLRefusal) -> VerifiedAssertion {
        // Issuer.
        guard let issuer = assertion.child("Issuer", in: Namespace.assertion), Self.isEntity(issuer), issuer.text == idp.entityID else {
            throw SAMLRefusal(.issuer, "the assertion's issuer is not the tenant's identity provider")
        }
        if let responseIssuer = response?.child("Issuer", in: Namespace.assertion) {
            guard Self.isEntity(responseIssuer), responseIssuer.text == idp.entityID else {
                throw SAMLRefusal(.issuer, "the response's issuer is not the tenant's identity provider")
            }
        }

        // Audience.
        guard let conditions = assertion.children("Conditions", in: Namespace.assertion).first,
            assertion.children("Conditions", in: Namespace.assertion).count == 1
        else { throw SAMLRefusal(.conditions, "the assertion has no Conditions") }
        let restrictions = conditions.children("AudienceRestriction", in: Namespace.assertion)
        guard !restrictions.isEmpty,
            restrictions.allSatisfy({ restriction in
                restriction.children("Audience", in: Namespace.assertion).contains { $0.text == serviceProvider.entityID }
            })
        else { throw SAMLRefusal(.audience, "the assertion is not meant for this service provider") }

        // Validity window.
        let notBefore = try Self.time(conditions, "NotBefore", .conditions)
        let notOnOrAfter = try Self.time(conditions, "NotOnOrAfter", .conditions)
        if let notBefore, notBefore > now.addingTimeInterval(clockSkew) {
            throw SAMLRefusal(.conditions, "the assertion is not valid yet")
        }
        if let notOnOrAfter, notOnOrAfter <= now.addingTimeInterval(-clockSkew) {
            throw SAMLRefusal(.conditions, "the assertion has expired")
        }

        // Bearer confirmation for this ACS, still valid.
        guard let subject = assertion.child("Subject", in: Namespace.assertion),
            assertion.children("Subject", in: Namespace.assertion).count == 1
        else { throw SAMLRefusal(.subject, "the assertion has no single Subject") }
        var confirmed: (data: XMLElement, until: Date)?
        for confirmation in subject.children("SubjectConfirmation", in: Namespace.assertion) where confirmation.attribute("Method") == Self.bearer {
            guard let data = confirmation.child("SubjectConfirmationData", in: Namespace.assertion),
                data.attribute("Recipient").map(recipients.contains) == true, data.attribute("NotBefore") == nil,
                let until = try Self.time(data, "NotOnOrAfter", .subjectConfirmation), until > now.addingTimeInterval(-clockSkew)
            else { continue }
            confirmed = (data, until)
            break
        }
        guard let confirmed else {
            throw SAMLRefusal(.subjectConfirmation, "no bearer confirmation for this ACS that is still valid")
        }
        let horizon = min(confirmed.until, notOnOrAfter ?? confirmed.until)
        guard horizon <= now.addingTimeInterval(maximumValidity) else {
            throw SAMLRefusal(.conditions, "the assertion is valid for longer than the broker accepts")
        }

        // InResponseTo: the pending request of this browser, or an unsolicited response the tenant allows.
        let answered = confirmed.data.attribute("InResponseTo")
        let responseAnswered = response?.attribute("InResponseTo")
        if let browser {
            if answered != nil || responseAnswered != nil {
                guard let pending = browser.pendingRequestID, answered == pending, responseAnswered == nil || responseAnswered == pending
                else { throw SAMLRefusal(.inResponseTo, "the response does not answer a request of this browser") }
            } else if !browser.allowUnsolicited {
                throw SAMLRefusal(.unsolicited, "unsolicited responses are not accepted for this tenant")
            }
        }

        guard !assertion.children("AuthnStatement", in: Namespace.assertion).isEmpty else {
            throw SAMLRefusal(.subject, "the assertion has no AuthnStatement")
        }
        var sessionEnd: Date?
        for statement in assertion.children("AuthnStatement", in: Namespace.assertion) {
            if let end = try Self.time(statement, "SessionNotOnOrAfter", .subject) { sessionEnd = min(sessionEnd ?? end, end) }
        }

        return VerifiedAssertion(
            assertionID: assertionID, claims: try Self.claims(subject: subject, assertion: assertion),
            inResponseTo: answered ?? responseAnswered, replayUntil: horizon.addingTimeInterval(clockSkew), validUntil: horizon,
            sessionNotOnOrAfter: sessionEnd)
    }

    // MARK: - Signatures

    private func verifySignature(_ signature: XMLElement, covering signed: XMLElement, tree: XMLTree, idp: IdPTrust) throws(SAMLRefusal) {
        // The shape first: one Reference, to the ID of the element that encloses the signature,
        // with only the allowed algorithms.
        guard let id = signed.attribute("ID"), !id.isEmpty else { throw SAMLRefusal(.signature, "the signed element has no ID") }
        let signedInfos = signature.children("SignedInfo", in: Namespace.dsig)
        guard signedInfos.count == 1, let signedInfo = signedInfos.first else { throw SAMLRefusal(.signature, "the signature has no SignedInfo") }
        let references = signedInfo.children("Reference", in: Namespace.dsig)
        guard references.count == 1, let reference = references.first, reference.attribute("URI") == "#" + id else {
            throw SAMLRefusal(.signature, "the signature does not reference the element that contains it")
        }
        guard signedInfo.child("CanonicalizationMethod", in: Namespace.dsig)?.attribute("Algorithm") == Algorithms.exclusiveC14N else {
            throw SAMLRefusal(.signature, "only exclusive canonicalization is accepted")
        }
        guard let method = Algorithms.find(signedInfo.child("SignatureMethod", in: Namespace.dsig)?.attribute("Algorithm"), in: Algorithms.signatureMethods)
        else { throw SAMLRefusal(.signature, "the signature algorithm is not accepted") }
        guard let digest = Algorithms.find(reference.child("DigestMethod", in: Namespace.dsig)?.attribute("Algorithm"), in: Algorithms.digestMethods)
        else { throw SAMLRefusal(.signature, "the digest algorithm is not accepted") }
        if (method.usesSHA1 || digest.usesSHA1) && !idp.allowSHA1 {
            throw SAMLRefusal(.signature, "SHA-1 is refused for this tenant")
        }
        for transform in reference.child("Transforms", in: Namespace.dsig)?.children ?? [] {
            guard transform.is("Transform", in: Namespace.dsig),
                transform.attribute("Algorithm") == Algorithms.enveloped || transform.attribute("Algorithm") == Algorithms.exclusiveC14N
            else { throw SAMLRefusal(.signature, "a transform other than enveloped-signature and exclusive c14n is refused") }
        }

        // The key: one of the metadata's, never the message's KeyInfo. The certificate sent in
        // KeyInfo only chooses which trusted key to try first.
        var ordered = idp.keys
        if ordered.count > 1,
            let hint = signature.descendants(where: { $0.is("X509Certificate", in: Namespace.dsig) }).first.flatMap({ Base64Text.decode($0.text) })
        {
            ordered.sort { first, _ in first.certificate.elementsEqual(hint) }
        }
        for key in ordered where attempt(signature, key: key, method: method, digest: digest) {
            // The covered-node check: the node xmlsec digested is the element we will read.
            guard let attribute = xmlGetID(tree.document, id), attribute.pointee.parent == signed.node, signature.parent == signed else {
                throw SAMLRefusal(.signature, "the signature does not cover the element read")
            }
            return
        }
        throw SAMLRefusal(.signature, "the signature is not valid for any of the identity provider's certificates")
    }

    /// One xmlsec verification with `key`; true only when it succeeded and its one reference is
    /// the same-document URI checked by the caller.
    private func attempt(_ signature: XMLElement, key: TrustedKey, method: Algorithms.Entry, digest: Algorithms.Entry) -> Bool {
        guard let context = xmlSecDSigCtxCreate(nil) else { return false }
        defer { xmlSecDSigCtxDestroy(context) }
        guard let copy = key.copy() else { return false }
        context.pointee.signKey = copy
        context.pointee.flags = UInt32(XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS)
        context.pointee.enabledReferenceUris = tessera_uri_same_document()
        guard xmlSecDSigCtxEnableReferenceTransform(context, tessera_transform_exc_c14n()) >= 0,
            xmlSecDSigCtxEnableReferenceTransform(context, tessera_transform_enveloped()) >= 0,
            xmlSecDSigCtxEnableReferenceTransform(context, digest.transform()) >= 0,
            xmlSecDSigCtxEnableSignatureTransform(context, tessera_transform_exc_c14n()) >= 0,
            xmlSecDSigCtxEnableSignatureTransform(context, method.transform()) >= 0
        else { return false }
        guard xmlSecDSigCtxVerify(context, signature.node) >= 0, context.pointee.status == tessera_dsig_succeeded() else { return false }
        guard xmlSecPtrListGetSize(&context.pointee.signedInfoReferences) == 1,
            let raw = xmlSecPtrListGetItem(&context.pointee.signedInfoReferences, 0)
        else { return false }
        let reference = raw.assumingMemoryBound(to: xmlSecDSigReferenceCtx.self)
        return reference.pointee.status == tessera_dsig_succeeded() && reference.pointee.uri != nil
    }

    // MARK: - Decryption

    /// Decrypts the EncryptedAssertion in place with the SP key (RSA-OAEP key transport, AES-CBC
    /// or AES-GCM content) and returns the one Assertion it held.
    private func decrypt(_ holder: XMLElement, tree: XMLTree) throws(SAMLRefusal) -> XMLElement {
        guard let decryptionKey else { throw SAMLRefusal(.decryption, "encrypted assertions are not configured") }
        let data = holder.children("EncryptedData", in: Namespace.xmlenc)
        guard data.count == 1, let encryptedData = data.first else {
            throw SAMLRefusal(.decryption, "the encrypted assertion must hold one EncryptedData")
        }
        guard let content = Algorithms.find(encryptedData.child("EncryptionMethod", in: Namespace.xmlenc)?.attribute("Algorithm"), in: Algorithms.contentEncryption)
        else { throw SAMLRefusal(.decryption, "the content encryption algorithm is not accepted") }
        let keys = holder.descendants { $0.is("EncryptedKey", in: Namespace.xmlenc) }
        guard !keys.isEmpty, keys.count <= 4 else { throw SAMLRefusal(.decryption, "the encrypted assertion has no usable EncryptedKey") }
        for encryptedKey in keys {
            guard Algorithms.find(encryptedKey.child("EncryptionMethod", in: Namespace.xmlenc)?.attribute("Algorithm"), in: Algorithms.keyTransport) != nil
            else { throw SAMLRefusal(.decryption, "the key transport algorithm is not accepted (RSA-OAEP only)") }
        }
        var contentKey: [UInt8]?
        for encryptedKey in keys {
            if let bytes = unwrap(encryptedKey, with: decryptionKey) {
                contentKey = bytes
                break
            }
        }
        guard var contentKey else { throw SAMLRefusal(.decryption, "the assertion cannot be decrypted with this service provider's key") }
        defer { for index in contentKey.indices { contentKey[index] = 0 } }

        guard let context = xmlSecEncCtxCreate(nil) else { throw SAMLRefusal(.decryption, "decryption context unavailable") }
        defer { xmlSecEncCtxDestroy(context) }
        guard let aes = contentKey.withUnsafeBufferPointer({ tessera_aes_key($0.baseAddress, Int32($0.count)) }) else {
            throw SAMLRefusal(.decryption, "the content key is not an AES key")
        }
        context.pointee.encKey = aes
        guard enable(content.transform(), in: context), enable(tessera_transform_base64(), in: context),
            xmlSecEncCtxDecrypt(context, encryptedData.node) >= 0, context.pointee.resultReplaced != 0
        else { throw SAMLRefusal(.decryption, "the assertion cannot be decrypted with this service provider's key") }

        let assertions = holder.children.filter { !$0.is("EncryptedKey", in: Namespace.xmlenc) }
        let inside = holder.descendants { $0.namespace == Namespace.assertion && ($0.localName == "Assertion" || $0.localName == "EncryptedAssertion") }
        guard assertions.count == 1, let assertion = assertions.first, assertion.is("Assertion", in: Namespace.assertion), inside.count == 1 else {
            throw SAMLRefusal(.assertionCount, "the encrypted assertion must hold exactly one assertion")
        }
        return assertion
    }

    /// The content key of one EncryptedKey, nil when it is not for this key.
    private func unwrap(_ encryptedKey: XMLElement, with key: TrustedKey) -> [UInt8]? {
        guard let context = xmlSecEncCtxCreate(nil) else { return nil }
        defer { xmlSecEncCtxDestroy(context) }
        guard let copy = key.copy() else { return nil }
        context.pointee.encKey = copy
        context.pointee.mode = xmlEncCtxModeEncryptedKey
        guard enable(tessera_transform_rsa_oaep(), in: context), enable(tessera_transform_base64(), in: context),
            let buffer = xmlSecEncCtxDecryptToBuffer(context, encryptedKey.node), let bytes = xmlSecBufferGetData(buffer)
        else { return nil }
        let size = Int(xmlSecBufferGetSize(buffer))
        guard [16, 24, 32].contains(size) else { return nil }
        return Array(UnsafeBufferPointer(start: bytes, count: size))
    }

    private func enable(_ transform: xmlSecTransformId?, in context: xmlSecEncCtxPtr) -> Bool {
        guard let transform else { return false }
        return xmlSecPtrListAdd(&context.pointee.transformCtx.enabledTransforms, UnsafeMutableRawPointer(mutating: transform)) >= 0
    }

    // MARK: - Reading

    /// Registers the `ID` attribute of `element` and of every element below it with libxml2 (what
    /// `#id` references resolve against); false on a duplicate.
    private func registerIDs(in element: XMLElement, of tree: XMLTree) -> Bool {
        let all = [element] + element.descendants { _ in true }
        for candidate in all {
            guard let attribute = xmlHasNsProp(candidate.node, "ID", nil), let value = xmlGetNoNsProp(candidate.node, "ID") else { continue }
            defer { tessera_xml_free(value) }
            if let existing = xmlGetID(tree.document, value) {
                if existing == attribute { continue }
                return false
            }
            guard xmlAddID(nil, tree.document, value, attribute) != nil else { return false }
        }
        return true
    }

    static func isEntity(_ issuer: XMLElement) -> Bool {
        let format = issuer.attribute("Format")
        return format == nil || format == entityFormat
    }

    static func time(_ element: XMLElement, _ name: String, _ check: SAMLRefusal.Check) throws(SAMLRefusal) -> Date? {
        guard let text = element.attribute(name) else { return nil }
        guard let date = SAMLTime.parse(text) else { throw SAMLRefusal(check, "\(name) is not a valid time") }
        return date
    }

    static let maximumAttributes = 256
    static let maximumValues = 256
    static let maximumValueSize = 4096

    /// NameID and attributes, each value the whole text of its element.
    static func claims(subject: XMLElement, assertion: XMLElement) throws(SAMLRefusal) -> SAMLSubjectClaims {
        let nameIDs = subject.children("NameID", in: Namespace.assertion)
        guard nameIDs.count == 1, let nameID = nameIDs.first, !nameID.hasElementChildren else {
            throw SAMLRefusal(.subject, "the subject must have one plain NameID")
        }
        let value = nameID.text
        guard !value.isEmpty, value.utf8.count <= 1024 else { throw SAMLRefusal(.subject, "the NameID is empty or too long") }
        var attributes: [String: [String]] = [:]
        var friendly: [String: String] = [:]
        var count = 0
        for statement in assertion.children("AttributeStatement", in: Namespace.assertion) {
            for attribute in statement.children("Attribute", in: Namespace.assertion) {
                count += 1
                guard count <= maximumAttributes else { throw SAMLRefusal(.subject, "the assertion has too many attributes") }
                guard let name = attribute.attribute("Name"), !name.isEmpty, name.utf8.count <= 512 else { continue }
                let values = attribute.children("AttributeValue", in: Namespace.assertion)
                guard values.count <= maximumValues else { throw SAMLRefusal(.subject, "an attribute has too many values") }
                let texts = values.map(\.text).filter { $0.utf8.count <= maximumValueSize }
                attributes[name, default: []].append(contentsOf: texts)
                if let label = attribute.attribute("FriendlyName"), !label.isEmpty, label.utf8.count <= 256 { friendly[label] = name }
            }
        }
        return SAMLSubjectClaims(nameID: value, nameIDFormat: nameID.attribute("Format"), attributes: attributes, friendlyNames: friendly)
    }
}

/// Base64 as SAML carries it (RFC 4648 §4 alphabet, padded): line breaks and spaces tolerated
/// (some IdPs wrap at 76 columns), nothing else. Decoded by hand over the bytes: it runs on every
/// response, and Foundation's decoder needs a whitespace-free copy first.
enum Base64Text {
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        for byte in [0x0A, 0x0D, 0x20, 0x09] { table[byte] = 0xFE }
        table[Int(UInt8(ascii: "="))] = 0xFD
        return table
    }()

    static func decode(_ text: String) -> Data? {
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable { decode($0) } ?? nil
    }

    static func decode(_ input: UnsafeBufferPointer<UInt8>) -> Data? {
        values.withUnsafeBufferPointer { table in
            var output = [UInt8](repeating: 0, count: input.count / 4 * 3 + 3)
            var written = 0
            var quantum: UInt32 = 0
            var filled = 0
            var padding = 0
            for byte in input {
                let value = table[Int(byte)]
                if value < 64 {
                    guard padding == 0 else { return nil }
                    quantum = quantum << 6 | UInt32(value)
                } else if value == 0xFE {
                    continue
                } else if value == 0xFD {
                    padding += 1
                    guard padding <= 2 else { return nil }
                    quantum <<= 6
                } else {
                    return nil
                }
                filled += 1
                if filled == 4 {
                    output[written] = UInt8(truncatingIfNeeded: quantum >> 16)
                    output[written + 1] = UInt8(truncatingIfNeeded: quantum >> 8)
                    output[written + 2] = UInt8(truncatingIfNeeded: quantum)
                    written += 3 - padding
                    quantum = 0
                    filled = 0
                    if padding > 0 { padding = 3 }  // nothing may follow a padded quantum
                }
            }
            guard filled == 0, written > 0 else { return nil }
            return Data(output[0..<written])
        }
    }
}
