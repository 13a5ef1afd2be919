public import Foundation
public import TesseraCore
public import TesseraJOSE

/// A signing key's place in its life: published before it signs, then signing, then only
/// published until every token it signed has expired.
public enum SigningKeyState: String, Codable, Sendable {
    case next
    case active
    case retired
}

/// One key file under `Keys/signing/`. The private key is sealed when a KEK is configured.
public struct StoredSigningKey: Codable, Sendable {
    public let kid: String
    public let alg: JWSAlgorithm
    public var state: SigningKeyState
    public let createdAt: Date
    public var activatedAt: Date?
    public var retiredAt: Date?
    /// After this instant the key is no longer published in JWKS and may be deleted.
    public var publishUntil: Date?
    /// The public JWK as JSON text; kept beside the private key so JWKS never needs to unseal.
    let publicJWK: String
    /// The private JWK as JSON text, present only when the key is not sealed.
    var privateJWK: String?
    /// AES-GCM sealed private JWK (base64), present only when sealed.
    var sealedPrivateJWK: String?

    public var isSealed: Bool { sealedPrivateJWK != nil }

    enum CodingKeys: String, CodingKey {
        case kid, alg, state, createdAt = "created_at", activatedAt = "activated_at", retiredAt = "retired_at"
        case publishUntil = "publish_until", publicJWK = "public_jwk", privateJWK = "private_jwk", sealedPrivateJWK = "sealed_private_jwk"
    }
}

/// The key ring's storage: one file per key in `<keys-dir>/signing/`, mode 0600, written atomically
/// (temp file + rename) under an exclusive lock so the CLI and a running server never interleave.
public struct KeyDirectory: Sendable {
    public let root: URL
    let kek: KeyEncryptionKey?
    /// How long a retired key stays published: the longest token lifetime plus clock skew.
    public let retention: TimeInterval

    public init(root: URL, kek: KeyEncryptionKey?, retention: TimeInterval) {
        self.root = root
        self.kek = kek
        self.retention = retention
    }

    var signingFolder: URL { root.appendingPathComponent("signing", isDirectory: true) }

    /// Creates the folder and, on first run, an active key and the next one.
    /// Returns true when keys were generated.
    @discardableResult
    public func ensureInitialized(algorithm: JWSAlgorithm, now: Date) throws -> Bool {
        try createFolders()
        return try withExclusiveLock {
            let keys = try load()
            if keys.contains(where: { $0.state == .active }) {
                try resealIfNeeded(keys)
                return false
            }
            var active = try makeKey(algorithm, now: now)
            active.state = .active
            active.activatedAt = now
            try write(active)
            try write(try makeKey(algorithm, now: now))
            return true
        }
    }

    public struct Rotation: Sendable {
        public let activated: String
        public let retired: String?
        public let published: String
        public let deleted: [String]
    }

    /// Promotes the pre-published `next` key to active, retires the active one (kept in JWKS for
    /// `retention`), publishes a fresh `next`, and deletes retired keys past their publication.
    public func rotate(algorithm: JWSAlgorithm, now: Date) throws -> Rotation {
        try createFolders()
        return try withExclusiveLock {
            var keys = try load()
            var deleted: [String] = []
            for key in keys where key.state == .retired && (key.publishUntil ?? .distantPast) <= now {
                try FileManager.default.removeItem(at: file(for: key.kid))
                deleted.append(key.kid)
            }
            keys.removeAll { deleted.contains($0.kid) }
            var retiredKid: String?
            for var key in keys where key.state == .active {
                key.state = .retired
                key.retiredAt = now
                key.publishUntil = now.addingTimeInterval(retention)
                try write(key)
                retiredKid = key.kid
            }
            var next: StoredSigningKey
            if let pending = keys.first(where: { $0.state == .next }) {
                next = pending
            } else {
                // No pre-published key (a damaged folder): the new key signs at once, which a
                // relying party with a cached JWKS will see only after it refetches.
                next = try makeKey(algorithm, now: now)
            }
            next.state = .active
            next.activatedAt = now
            try write(next)
            let fresh = try makeKey(algorithm, now: now)
            try write(fresh)
            return Rotation(activated: next.kid, retired: retiredKid, published: fresh.kid, deleted: deleted)
        }
    }

    /// The HMAC key of the stateless DPoP nonces (`Keys/dpop-nonce.key`, 32 random bytes, 0600),
    /// created on first use. Instances sharing the folder accept each other's nonces.
    public func dpopNonceKey() throws -> [UInt8] { try symmetricKey(named: "dpop-nonce.key") }

    public func load() throws -> [StoredSigningKey] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: signingFolder.path)
        } catch {
            return []
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try names.filter { $0.hasSuffix(".json") }.sorted().map { name in
            let data = try Data(contentsOf: signingFolder.appendingPathComponent(name))
            do {
                return try decoder.decode(StoredSigningKey.self, from: data)
            } catch {
                throw KeyRingError.storage("unreadable key file \(name)")
            }
        }
    }

    /// A cheap fingerprint of the folder (names, sizes, modification times) to notice a rotation.
    public func fingerprint() -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: signingFolder.path)) ?? []
        return names.sorted().map { name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: signingFolder.appendingPathComponent(name).path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
            return "\(name):\(size):\(modified)"
        }.joined(separator: "|")
    }

    func publicKey(for stored: StoredSigningKey) throws -> JWK {
        do {
            return try JWK(json: try StrictJSON.parse(Array(stored.publicJWK.utf8)))
        } catch {
            throw KeyRingError.storage("key \(stored.kid) has an invalid public JWK")
        }
    }

    func signingKey(for stored: StoredSigningKey) throws -> JWSSigningKey {
        let text: [UInt8]
        if let sealed = stored.sealedPrivateJWK {
            guard let kek else {
                throw KeyRingError.sealing("key \(stored.kid) is sealed; set TESSERA_KEK to the key-encryption key")
            }
            text = try kek.open(sealed, kid: stored.kid)
        } else if let plain = stored.privateJWK {
            text = Array(plain.utf8)
        } else {
            throw KeyRingError.storage("key \(stored.kid) has no private key")
        }
        do {
            return try JWSSigningKey(privateJWK: try StrictJSON.parse(text))
        } catch {
            throw KeyRingError.storage("key \(stored.kid) is not a valid private JWK")
        }
    }

    private func makeKey(_ algorithm: JWSAlgorithm, now: Date) throws -> StoredSigningKey {
        let key = try JWSSigningKey.generate(algorithm)
        let privateText = StrictJSON.serialize(key.privateJWK)
        var stored = StoredSigningKey(
            kid: key.kid, alg: algorithm, state: .next, createdAt: now, activatedAt: nil, retiredAt: nil,
            publishUntil: nil, publicJWK: String(decoding: StrictJSON.serialize(key.publicJWK.json), as: UTF8.self),
            privateJWK: nil, sealedPrivateJWK: nil)
        if let kek {
            stored.sealedPrivateJWK = try kek.seal(privateText, kid: key.kid)
        } else {
            stored.privateJWK = String(decoding: privateText, as: UTF8.self)
        }
        return stored
    }

    /// With a KEK configured, keys written before it was set are sealed in place.
    private func resealIfNeeded(_ keys: [StoredSigningKey]) throws {
        guard let kek else { return }
        for var key in keys where !key.isSealed {
            guard let plain = key.privateJWK else { continue }
            key.sealedPrivateJWK = try kek.seal(Array(plain.utf8), kid: key.kid)
            key.privateJWK = nil
            try write(key)
        }
    }

    private func file(for kid: String) -> URL { signingFolder.appendingPathComponent("\(kid).json") }

    private func write(_ key: StoredSigningKey) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(key)
        let target = file(for: key.kid)
        let temporary = signingFolder.appendingPathComponent(".\(key.kid).tmp")
        FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary.path, target.path) == 0 else {
            throw KeyRingError.storage("cannot write key file (errno \(errno))")
        }
    }

    private func createFolders() throws {
        for folder in [root, signingFolder] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        let path = root.appendingPathComponent(".lock").path
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw KeyRingError.storage("cannot open lock file (errno \(errno))") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw KeyRingError.storage("cannot lock key folder") }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
