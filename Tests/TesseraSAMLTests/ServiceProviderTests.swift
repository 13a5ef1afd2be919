import Crypto
import Foundation
import XCTest
import _CryptoExtras
@testable import TesseraSAML

/// The SP's own artefacts: key pairs, metadata, and the signed HTTP-Redirect AuthnRequest; and
/// the reading of IdP metadata.
final class ServiceProviderTests: XCTestCase {
    func testCredentialsRoundTripAndACertificateOfAnotherKeyIsRefused() throws {
        let made = SAMLFixtures.credentials
        let again = try ServiceProviderCredentials(privateKeyPEM: made.privateKeyPEM, certificateDER: made.certificateDER)
        XCTAssertEqual(again.certificateDER, made.certificateDER)
        XCTAssertThrowsError(
            try ServiceProviderCredentials(privateKeyPEM: made.privateKeyPEM, certificateDER: SAMLFixtures.otherCredentials.certificateDER))
    }

    func testTheRedirectCarriesADeflatedRequestAndASignatureOverTheQueryAsSent() throws {
        let request = AuthnRequest(serviceProvider: SAMLFixtures.sp, destination: "https://idp.example.test/sso?tenant=x", now: SAMLFixtures.now)
        let url = try request.redirectURL(to: "https://idp.example.test/sso?tenant=x", signingKey: SAMLFixtures.credentials.signingKey)
        let query = try XCTUnwrap(url.split(separator: "?", maxSplits: 1).last).replacingOccurrences(of: "tenant=x&", with: "")
        let parts = query.components(separatedBy: "&Signature=")
        XCTAssertEqual(parts.count, 2)
        let signature = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(parts[1].removingPercentEncoding)))
        XCTAssertTrue(
            SAMLFixtures.credentials.signingKey.publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: Array(parts[0].utf8)),
                padding: .insecurePKCS1v1_5))
        // SAMLRequest: one stored DEFLATE block holding the request.
        let encoded = try XCTUnwrap(parts[0].components(separatedBy: "&").first?.dropFirst("SAMLRequest=".count))
        let deflated = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(String(encoded).removingPercentEncoding)))
        XCTAssertEqual(deflated.first, 1)
        XCTAssertEqual(String(decoding: deflated.dropFirst(5), as: UTF8.self), request.xml)
        let tree = try XMLTree(parsing: Array(request.xml.utf8))
        XCTAssertEqual(tree.root?.attribute("ID"), request.id)
        XCTAssertEqual(tree.root?.attribute("AssertionConsumerServiceURL"), SAMLFixtures.sp.acsURL)
        XCTAssertEqual(tree.root?.child("Issuer", in: Namespace.assertion)?.text, SAMLFixtures.sp.entityID)
    }

    func testStoredDeflateSplitsLongInputIntoBlocks() {
        let input = [UInt8](repeating: 0x41, count: 70_000)
        let output = Deflate.stored(input)
        XCTAssertEqual(output.count, input.count + 10)
        XCTAssertEqual(output[0], 0)
        XCTAssertEqual(output[65_540], 1)
    }

    func testTheSPMetadataNamesTheEndpointsAndBothCertificates() throws {
        let document = ServiceProviderMetadata.document(
            serviceProvider: SAMLFixtures.sp, signing: SAMLFixtures.credentials, encryption: SAMLFixtures.otherCredentials,
            wantAssertionsSigned: true)
        let tree = try XMLTree(parsing: Array(document.utf8))
        let root = try XCTUnwrap(tree.root)
        XCTAssertEqual(root.attribute("entityID"), SAMLFixtures.sp.entityID)
        let descriptor = try XCTUnwrap(root.child("SPSSODescriptor", in: Namespace.metadata))
        XCTAssertEqual(descriptor.attribute("AuthnRequestsSigned"), "true")
        XCTAssertEqual(descriptor.attribute("WantAssertionsSigned"), "true")
        XCTAssertEqual(descriptor.child("AssertionConsumerService", in: Namespace.metadata)?.attribute("Location"), SAMLFixtures.sp.acsURL)
        let uses = descriptor.children("KeyDescriptor", in: Namespace.metadata).compactMap { $0.attribute("use") }
        XCTAssertEqual(uses, ["signing", "encryption"])
    }

    func testIdPMetadataIsReadWithEveryCertificate() throws {
        let text = SAMLFixtures.idpMetadata(certificates: [SAMLFixtures.credentials.certificateDER, SAMLFixtures.otherCredentials.certificateDER])
        let metadata = try IdPMetadata(xml: Array(text.utf8), now: SAMLFixtures.now)
        XCTAssertEqual(metadata.entityID, SAMLFixtures.idpEntity)
        XCTAssertEqual(metadata.singleSignOnURL, "https://idp.example.test/sso")
        XCTAssertEqual(metadata.signingCertificates.count, 2)
    }

    func testUnusableIdPMetadataIsRefusedWithAReason() {
        let cases: [(String, String)] = [
            ("no certificate", SAMLFixtures.idpMetadata(certificates: [])),
            ("no redirect endpoint", SAMLFixtures.idpMetadata(certificates: [SAMLFixtures.credentials.certificateDER], ssoBinding: "urn:x")),
            ("expired", SAMLFixtures.idpMetadata(certificates: [SAMLFixtures.credentials.certificateDER], validUntil: "2020-01-01T00:00:00Z")),
            ("not a certificate", SAMLFixtures.idpMetadata(certificates: [[1, 2, 3, 4]])),
            ("DOCTYPE", "<!DOCTYPE x>" + SAMLFixtures.idpMetadata(certificates: [SAMLFixtures.credentials.certificateDER])),
            ("not metadata", "<x/>"),
        ]
        for (name, text) in cases {
            XCTAssertThrowsError(try IdPMetadata(xml: Array(text.utf8), now: SAMLFixtures.now), name)
        }
    }
}

final class SAMLTimeTests: XCTestCase {
    func testUTCTimesWithAndWithoutFractionsAreRead() {
        XCTAssertEqual(SAMLTime.parse("2026-11-22T13:00:00Z"), try? Date("2026-11-22T13:00:00Z", strategy: .iso8601))
        XCTAssertEqual(SAMLTime.parse("2000-02-29T23:59:59.5Z")?.timeIntervalSince1970, 951_868_799.5)
        XCTAssertEqual(SAMLTime.parse("1970-01-01T00:00:00.000Z")?.timeIntervalSince1970, 0)
        XCTAssertEqual(SAMLTime.parse(SAMLTime.format(SAMLFixtures.now)), SAMLFixtures.now)
    }

    func testAnythingButUTCDateTimeIsRefused() {
        for text in ["2026-11-22T13:00:00", "2026-11-22T13:00:00+01:00", "2026-11-22 13:00:00Z", "2026-13-01T00:00:00Z",
            "2026-11-22T13:00:00.Z", "x026-11-22T13:00:00Z", ""]
        {
            XCTAssertNil(SAMLTime.parse(text), text)
        }
    }
}

final class Base64TextTests: XCTestCase {
    func testEveryLengthRoundTripsWithAndWithoutLineBreaks() {
        var generator = SystemRandomNumberGenerator()
        for length in 1...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Data(bytes).base64EncodedString()
            XCTAssertEqual(Base64Text.decode(encoded), Data(bytes), "\(length)")
            let wrapped = Data(bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
            XCTAssertEqual(Base64Text.decode(" " + wrapped + "\n"), Data(bytes), "\(length) wrapped")
        }
    }

    func testAnythingButPaddedStandardBase64IsRefused() {
        for text in ["", "   ", "QUJD!", "QUJ", "QQ", "QQ=", "Q===", "QQ==QUJD", "QU=D", "QUJD-_", "QUJDRA==\u{0}", "QUJD\tRA==x"] {
            XCTAssertNil(Base64Text.decode(text), text.debugDescription)
        }
    }
}
