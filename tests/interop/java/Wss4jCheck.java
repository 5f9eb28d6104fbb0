import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilderFactory;
import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSDataRef;
import org.apache.ws.security.WSPasswordCallback;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.WSSecurityEngine;
import org.apache.ws.security.WSSecurityEngineResult;
import org.apache.ws.security.WSSecurityException;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.handler.RequestData;
import org.apache.ws.security.message.token.Timestamp;
import org.apache.ws.security.message.token.UsernameToken;
import org.apache.ws.security.validate.Credential;
import org.apache.ws.security.validate.Validator;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Apache WSS4J 1.6 as the receiver of wssim's messages: every message of a batch goes through
 * WSSecurityEngine.processSecurityHeader with only what a real receiver holds (its own
 * private key, the test CA as sole trust anchor, the users' passwords, the SecurityContext
 * secrets), its Timestamp judged by WSS4J's rules at the message's simulated time.
 *
 * <p>The batch file holds tab-separated lines: {@code ca PEM}, {@code key NAME KEY_PEM
 * CERT_PEM}, {@code user NAME PASSWORD}, {@code secret ID BASE64}, then {@code verify LABEL
 * KEY_NAME EPOCH_MS FILE} (KEY_NAME "-": no private key). One line is printed per verify:
 * {@code LABEL ACCEPTED what-was-processed} or {@code LABEL REFUSED why}.
 */
public final class Wss4jCheck {
    private static final char[] KEY_PASSWORD = "receiver".toCharArray();

    private final Map<String, String> passwords = new HashMap<>();
    private final Map<String, byte[]> secrets = new HashMap<>();
    private final Map<String, Merlin> receivers = new HashMap<>();
    private KeyStore trust;

    public static void main(String[] args) throws Exception {
        org.apache.xml.security.Init.init();
        WSSConfig.init();
        new Wss4jCheck().run(Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8));
    }

    private void run(List<String> lines) throws Exception {
        for (String line : lines) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t");
            switch (f[0]) {
                case "ca" -> trust = trustStore(f[1]);
                case "key" -> receivers.put(f[1], receiver(f[2], f[3]));
                case "user" -> passwords.put(f[1], f[2]);
                case "secret" -> secrets.put(f[1], Base64.getDecoder().decode(f[2]));
                case "verify" -> System.out.println(f[1] + "\t" + verify(f[2], Long.parseLong(f[3]), f[4]));
                default -> throw new IllegalArgumentException("unknown batch line: " + f[0]);
            }
            System.out.flush();
        }
    }

    private String verify(String keyName, long epochMillis, String file) throws Exception {
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(true);
        config.setTimeStampStrict(true);
        // UsernameToken Profile 1.1 key derivation: a token with Salt and Iteration, no password
        config.setAllowUsernameTokenNoPassword(true);
        Date now = new Date(epochMillis);
        config.setValidator(WSSecurityEngine.TIMESTAMP, new TimestampAt(now));
        // The UsernameToken processor judges wsu:Created by the wall clock: its rule (utTTL,
        // utFutureTTL) is applied here at the simulated instant, and the wall clock's opened.
        int utTTL = config.getUtTTL();
        int utFutureTTL = config.getUtFutureTTL();
        config.setUtTTL(Integer.MAX_VALUE);
        config.setUtFutureTTL(Integer.MAX_VALUE);
        WSSecurityEngine engine = new WSSecurityEngine();
        engine.setWssConfig(config);
        Merlin crypto = "-".equals(keyName) ? receiver(null, null) : receivers.get(keyName);
        if (crypto == null) {
            throw new IllegalArgumentException("no key named " + keyName);
        }
        try {
            Document doc = parse(Files.readAllBytes(Path.of(file)));
            usernameTokensCreatedAt(doc, now, utTTL, utFutureTTL, config);
            List<WSSecurityEngineResult> results =
                engine.processSecurityHeader(doc, null, this::handle, crypto, crypto);
            return "ACCEPTED\t" + summary(results);
        } catch (WSSecurityException | RuntimeException e) {
            Throwable cause = e;
            StringBuilder why = new StringBuilder();
            while (cause != null) {
                why.append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage()).append(" | ");
                cause = cause.getCause();
            }
            return "REFUSED\t" + why.toString().replace('\n', ' ').replace('\t', ' ');
        }
    }

    /** UsernameTokenProcessor's wsu:Created check (DateUtil.verifyCreated) at ``now``. */
    private static void usernameTokensCreatedAt(Document doc, Date now, int ttl, int future, WSSConfig config)
        throws WSSecurityException {
        NodeList tokens = doc.getElementsByTagNameNS(WSConstants.WSSE_NS, WSConstants.USERNAME_TOKEN_LN);
        for (int i = 0; i < tokens.getLength(); i++) {
            UsernameToken token = new UsernameToken((Element) tokens.item(i),
                config.getAllowNamespaceQualifiedPasswordTypes(), config.isWsiBSPCompliant());
            if (!createdWithin(token.getCreatedDate(), now, ttl, future)) {
                throw new WSSecurityException(WSSecurityException.MESSAGE_EXPIRED);
            }
        }
    }

    /** DateUtil.verifyCreated with ``now`` for the wall clock. */
    static boolean createdWithin(Date created, Date now, int ttl, int future) {
        if (created == null) {
            return true;
        }
        long latest = now.getTime() + (future > 0 ? future * 1000L : 0);
        return !created.after(new Date(latest)) && !created.before(new Date(now.getTime() - ttl * 1000L));
    }

    /** What WSS4J processed: actions, the elements it verified and decrypted, the tokens. */
    private static String summary(List<WSSecurityEngineResult> results) {
        if (results == null) {
            return "no-security-header";
        }
        Map<String, List<String>> seen = new TreeMap<>();
        for (WSSecurityEngineResult result : results) {
            int action = (Integer) result.get(WSSecurityEngineResult.TAG_ACTION);
            String name = switch (action) {
                case WSConstants.SIGN -> "signed";
                case WSConstants.ENCR -> "decrypted";
                case WSConstants.TS -> "timestamp";
                case WSConstants.UT, WSConstants.UT_NOPASSWORD -> "username-token";
                case WSConstants.DKT -> "derived-key";
                case WSConstants.SCT -> "context-token";
                case WSConstants.BST -> "binary-token";
                default -> "action-" + action;
            };
            List<String> names = seen.computeIfAbsent(name, k -> new ArrayList<>());
            @SuppressWarnings("unchecked")
            List<WSDataRef> refs = (List<WSDataRef>) result.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
            if (refs == null || refs.isEmpty()) {
                names.add("");
            }
            for (WSDataRef ref : refs == null ? List.<WSDataRef>of() : refs) {
                QName q = ref.getName();
                names.add(q == null ? "?" : q.getLocalPart());
            }
        }
        StringBuilder out = new StringBuilder();
        seen.forEach((k, v) -> out.append(k).append('=').append(String.join(",", v)).append(';'));
        return out.toString();
    }

    private void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (!(callback instanceof WSPasswordCallback pc)) {
                throw new UnsupportedCallbackException(callback);
            }
            switch (pc.getUsage()) {
                case WSPasswordCallback.DECRYPT, WSPasswordCallback.SIGNATURE -> pc.setPassword(new String(KEY_PASSWORD));
                case WSPasswordCallback.USERNAME_TOKEN, WSPasswordCallback.USERNAME_TOKEN_UNKNOWN ->
                    pc.setPassword(passwords.get(pc.getIdentifier()));
                case WSPasswordCallback.SECURITY_CONTEXT_TOKEN, WSPasswordCallback.SECRET_KEY -> {
                    byte[] key = secrets.get(pc.getIdentifier());
                    if (key != null) {
                        pc.setKey(key);
                    }
                }
                default -> throw new UnsupportedCallbackException(callback, "usage " + pc.getUsage());
            }
        }
    }

    /** The receiver's crypto: its own key pair (if any), the test CA as the only anchor. */
    private Merlin receiver(String keyPem, String certPem) throws Exception {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        if (keyPem != null) {
            X509Certificate cert = certificate(Files.readString(Path.of(certPem)));
            keys.setKeyEntry("receiver", privateKey(Files.readString(Path.of(keyPem))), KEY_PASSWORD,
                new Certificate[] {cert});
        }
        Merlin merlin = new Merlin();
        merlin.setKeyStore(keys);
        merlin.setTrustStore(trust);
        return merlin;
    }

    private static KeyStore trustStore(String caPem) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setCertificateEntry("ca", certificate(Files.readString(Path.of(caPem))));
        return store;
    }

    private static X509Certificate certificate(String pem) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
            .generateCertificate(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
    }

    private static PrivateKey privateKey(String pem) throws Exception {
        String body = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body)));
    }

    static Document parse(byte[] data) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return factory.newDocumentBuilder().parse(new ByteArrayInputStream(data));
    }

    /**
     * WSS4J's TimestampValidator (timestampStrict, timeStampTTL, timeStampFutureTTL, as
     * Timestamp.isExpired and DateUtil.verifyCreated apply them) with the message's
     * simulated arrival instant in place of the wall clock.
     */
    static final class TimestampAt implements Validator {
        private final Date now;

        TimestampAt(Date now) {
            this.now = now;
        }

        @Override
        public Credential validate(Credential credential, RequestData data) throws WSSecurityException {
            if (credential == null || credential.getTimestamp() == null) {
                throw new WSSecurityException(WSSecurityException.FAILURE, "noCredential");
            }
            WSSConfig config = data.getWssConfig();
            Timestamp timestamp = credential.getTimestamp();
            Date expires = timestamp.getExpires();
            boolean expired = expires != null && expires.before(now);
            boolean createdOk = createdWithin(
                timestamp.getCreated(), now, config.getTimeStampTTL(), config.getTimeStampFutureTTL());
            if ((config.isTimeStampStrict() && expired) || !createdOk) {
                throw new WSSecurityException(WSSecurityException.MESSAGE_EXPIRED, "invalidTimestamp",
                    new Object[] {"The security semantics of the message have expired"});
            }
            return credential;
        }
    }
}
