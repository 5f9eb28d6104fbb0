import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSEncryptionPart;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.conversation.ConversationConstants;
import org.apache.ws.security.message.WSSecDKEncrypt;
import org.apache.ws.security.message.WSSecDKSign;
import org.apache.ws.security.message.WSSecEncrypt;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.apache.ws.security.message.WSSecTimestamp;
import org.apache.ws.security.message.WSSecUsernameToken;
import org.apache.ws.security.util.WSTimeSource;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * Apache WSS4J 1.6 as the sender: it secures a plain SOAP envelope the way its own users
 * would, at a given simulated instant, for one of our receivers to read.
 *
 * <p>The batch file (the one argument) holds one message a line, tab-separated:
 * {@code x509 IN OUT EPOCH_MS SENDER_KEY SENDER_CERT RECIPIENT_CERT}: Timestamp, RSA-SHA1
 * signature (BinarySecurityToken), Body encrypted (AES-256, RSA-OAEP key, thumbprint).
 * {@code sct IN OUT EPOCH_MS SCT_ID SECRET_B64}: DerivedKeyTokens from an external
 * SecurityContextToken. {@code ut IN OUT EPOCH_MS USER PASSWORD ITERATIONS}:
 * DerivedKeyTokens from a UsernameToken-derived key (UsernameToken Profile 1.1).
 * Each signs the Body, the Timestamp and wsa:Action, then encrypts the Body's content.
 * WSS4J writes no wsc:Label: its keys derive with WS-SecureConversation's default label.
 */
public final class Wss4jWrite {
    private static final String WSA = "http://www.w3.org/2005/08/addressing";

    public static void main(String[] args) throws Exception {
        org.apache.xml.security.Init.init();
        WSSConfig.init();
        for (String line : Files.readAllLines(Path.of(args[0]))) {
            if (!line.isBlank()) {
                write(line.split("\t"));
                System.out.println("WROTE\t" + line.split("\t")[2]);
            }
        }
    }

    private static void write(String[] args) throws Exception {
        Document doc = Wss4jCheck.parse(Files.readAllBytes(Path.of(args[1])));
        // WSS4J 1.6 names its wsu elements "wsu:" but declares the prefix only where the
        // namespace is not yet in scope: under our Envelope's xmlns:u it signs a canonical
        // form lacking xmlns:wsu, which no serialization reproduces. Declared up front, the
        // prefix is in scope and what it signs is what it sends.
        doc.getDocumentElement().setAttributeNS(
            "http://www.w3.org/2000/xmlns/", "xmlns:wsu", WSConstants.WSU_NS);
        Date now = new Date(Long.parseLong(args[3]));
        WSSConfig config = WSSConfig.getNewInstance();
        config.setCurrentTime(new WSTimeSource() {
            @Override
            public Date now() {
                return now;
            }
        });
        WSSecHeader header = new WSSecHeader();
        header.setMustUnderstand(true);
        header.insertSecurityHeader(doc);
        switch (args[0]) {
            case "x509" -> x509(doc, header, config, args);
            case "sct" -> derived(doc, header, config, Base64.getDecoder().decode(args[5]), args[4],
                ConversationConstants.WSC_NS_05_12 + ConversationConstants.TOKEN_TYPE_SECURITY_CONTEXT_TOKEN, true);
            case "ut" -> {
                WSSecUsernameToken token = new WSSecUsernameToken(config);
                token.setUserInfo(args[4], args[5]);
                token.addDerivedKey(true, null, Integer.parseInt(args[6]));
                token.prepare(doc);
                derived(doc, header, config, token.getDerivedKey(), token.getId(),
                    WSConstants.WSS_USERNAME_TOKEN_VALUE_TYPE, false);
                token.prependToHeader(header);
            }
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
        // the Timestamp, built first to be signed, goes first in the header as WSS4J's own
        // handlers place it (moving it changes no digest: its namespace context is the same)
        Element security = header.getSecurityHeader();
        Element stamp = (Element) security.getElementsByTagNameNS(WSConstants.WSU_NS, "Timestamp").item(0);
        security.insertBefore(stamp, security.getFirstChild());
        // serialized as built: no indentation may enter signed content
        javax.xml.transform.TransformerFactory.newInstance().newTransformer().transform(
            new javax.xml.transform.dom.DOMSource(doc),
            new javax.xml.transform.stream.StreamResult(Path.of(args[2]).toFile()));
    }

    /** The Timestamp comes first: it must exist before it can be signed. */
    private static void timestamp(Document doc, WSSecHeader header, WSSConfig config) {
        WSSecTimestamp timestamp = new WSSecTimestamp(config);
        timestamp.setTimeToLive(300);
        timestamp.prepare(doc);
        timestamp.prependToHeader(header);
    }

    private static List<WSEncryptionPart> signedParts(Document doc) {
        String soap = doc.getDocumentElement().getNamespaceURI();
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart("Body", soap, "Element"));
        parts.add(new WSEncryptionPart("Timestamp", WSConstants.WSU_NS, "Element"));
        parts.add(new WSEncryptionPart("Action", WSA, "Element"));
        return parts;
    }

    private static List<WSEncryptionPart> encryptedParts(Document doc) {
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart("Body", doc.getDocumentElement().getNamespaceURI(), "Content"));
        return parts;
    }

    private static void x509(Document doc, WSSecHeader header, WSSConfig config, String[] args) throws Exception {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        X509Certificate own = certificate(args[5]);
        String pem = Files.readString(Path.of(args[4])).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        keys.setKeyEntry("sender", KeyFactory.getInstance("RSA").generatePrivate(
            new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem))), "sender".toCharArray(),
            new Certificate[] {own});
        Merlin crypto = new Merlin();
        crypto.setKeyStore(keys);
        timestamp(doc, header, config);

        WSSecSignature signature = new WSSecSignature(config);
        signature.setUserInfo("sender", "sender");
        signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
        signature.setSignatureAlgorithm(WSConstants.RSA_SHA1);
        signature.setDigestAlgo(WSConstants.SHA1);
        signature.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        signature.setParts(signedParts(doc));
        signature.build(doc, crypto, header);

        WSSecEncrypt encrypt = new WSSecEncrypt(config);
        encrypt.setUseThisCert(certificate(args[6]));
        encrypt.setKeyIdentifierType(WSConstants.THUMBPRINT_IDENTIFIER);
        encrypt.setSymmetricEncAlgorithm(WSConstants.AES_256);
        encrypt.setKeyEnc(WSConstants.KEYTRANSPORT_RSAOEP);
        encrypt.setParts(encryptedParts(doc));
        encrypt.build(doc, crypto, header);
    }

    private static void derived(Document doc, WSSecHeader header, WSSConfig config, byte[] secret, String tokenId,
            String valueType, boolean directId) throws Exception {
        timestamp(doc, header, config);

        WSSecDKSign signature = new WSSecDKSign(config);
        signature.setWscVersion(ConversationConstants.VERSION_05_12);
        signature.setExternalKey(secret, tokenId);
        signature.setTokenIdDirectId(directId);
        signature.setCustomValueType(valueType);
        signature.setDerivedKeyLength(24);
        signature.setSignatureAlgorithm(WSConstants.HMAC_SHA1);
        signature.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        signature.setParts(signedParts(doc));
        signature.build(doc, header);

        WSSecDKEncrypt encrypt = new WSSecDKEncrypt(config);
        encrypt.setWscVersion(ConversationConstants.VERSION_05_12);
        encrypt.setExternalKey(secret, tokenId);
        encrypt.setTokenIdDirectId(directId);
        encrypt.setCustomValueType(valueType);
        encrypt.setDerivedKeyLength(32);
        encrypt.setSymmetricEncAlgorithm(WSConstants.AES_256);
        encrypt.setParts(encryptedParts(doc));
        encrypt.build(doc, header);
    }

    private static X509Certificate certificate(String path) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(
            new ByteArrayInputStream(Files.readAllBytes(Path.of(path))));
    }
}
