import CXMLSec

/// The one-time set-up of libxml2 and xmlsec1 (OpenSSL backend), in the order the libraries
/// need (NOTES.md): parser, xmlsec, version check, no I/O callbacks (xmlsec can never fetch a
/// URI), crypto app, crypto. Refuses to run when the struct layouts Swift sees differ from the
/// library's: xmlsec would then write at wrong offsets.
enum XMLSecurity {
    enum SetupError: Error, CustomStringConvertible {
        case failed(String)
        var description: String {
            switch self { case .failed(let why): "xmlsec1 set-up failed: \(why)" }
        }
    }

    private static let setup: Result<Void, SetupError> = {
        xmlInitParser()
        guard xmlSecInit() >= 0 else { return .failure(.failed("xmlSecInit")) }
        guard tessera_xmlsec_check_version() == 1 else { return .failure(.failed("the loaded xmlsec1 is not the version built against")) }
        xmlSecIOCleanupCallbacks()
        tessera_xmlsec_silence()
        guard tessera_xmlsec_crypto_app_init() >= 0 else { return .failure(.failed("xmlSecCryptoAppInit")) }
        guard tessera_xmlsec_crypto_init() >= 0 else { return .failure(.failed("xmlSecCryptoInit")) }
        guard tessera_xmlsec_check_dsig_layout() == 0, tessera_xmlsec_check_enc_layout() == 0 else {
            return .failure(.failed("xmlSecDSigCtx/xmlSecEncCtx layout differs from the library's (build defines)"))
        }
        return .success(())
    }()

    /// Call before any use; cheap after the first call. Also silences libxml2 on the calling thread.
    static func ready() throws(SetupError) {
        try setup.get()
        tessera_libxml_silence_thread()
    }
}
