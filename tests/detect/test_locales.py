"""Table-driven, per locale: national formats, national ids, names, addresses, secrets,
realistic variants, and "no match" rows (hard negatives) in every language."""

from __future__ import annotations

import pytest

from coatcheck.middleware.detect import Detector

DETECTOR = Detector.from_config({})

# (locale, text, expected [(type, matched substring)])
ROWS: list[tuple[str, str, list[tuple[str, str]]]] = [
    # de-DE
    ("de-DE", "Meine Handynummer ist 0171 94028383.", [("PHONE_NUMBER", "0171 94028383")]),
    ("de-DE", "Festnetz 030/12345678 bitte", [("PHONE_NUMBER", "030/12345678")]),
    ("de-DE", "Meine Steuer-ID lautet 36 574 261 809", [("DE_TAX_ID", "36 574 261 809")]),
    ("de-DE", "Ich heiße Jürgen Müller.", [("PERSON", "Jürgen Müller")]),
    (
        "de-DE",
        "Lieferadresse: Hauptstraße 5, 10115 Berlin",
        [("ADDRESS", "Hauptstraße 5, 10115 Berlin")],
    ),
    ("de-DE", "Bestellnummer 2024-118-553, Betrag 1.234,56 €", []),
    ("de-DE", "Kontakt: 99 1234 5678", [("PHONE_NUMBER", "99 1234 5678")]),
    (
        "de-DE",
        "Konto 99 1234 5678",
        [("ID_NUMBER", "99 1234 5678")],
    ),  # an account: vaulted, not a phone
    ("de-DE", "Termin am 14.03.2025 um 10:30 Uhr, Artikel AB-12345", []),
    # a wrong check digit is no Steuer-ID, but still a number the words call an id: vaulted
    ("de-DE", "Steuer-ID 36 574 261 808", [("ID_NUMBER", "36 574 261 808")]),
    # fr-FR
    ("fr-FR", "mon portable 06 12 34 56 78", [("PHONE_NUMBER", "06 12 34 56 78")]),
    ("fr-FR", "je m'appelle Marie Dubois", [("PERSON", "Marie Dubois")]),
    (
        "fr-FR",
        "Livraison au 12 rue de la Paix, 75002 Paris",
        [("ADDRESS", "12 rue de la Paix, 75002 Paris")],
    ),
    (
        "fr-FR",
        "numéro de sécurité sociale 2 84 05 75 111 222 84",
        [("FR_NIR", "2 84 05 75 111 222 84")],
    ),
    ("fr-FR", "commande n° 2024-118-553 de 49,90 €", []),
    ("fr-FR", "rendez-vous le 14/03/2025 à 14h30", []),
    ("fr-FR", "contact : 99 1234 5678", [("PHONE_NUMBER", "99 1234 5678")]),
    # es-ES
    (
        "es-ES",
        "Me llamo Ana García, mi móvil es 612 34 56 78",
        [("PERSON", "Ana García"), ("PHONE_NUMBER", "612 34 56 78")],
    ),
    ("es-ES", "Mi DNI es 12345678Z", [("ES_NIF", "12345678Z")]),
    ("es-ES", "NIE X1234567L", [("ES_NIE", "X1234567L")]),
    ("es-ES", "DNI 12345678A", []),  # wrong letter
    (
        "es-ES",
        "Mi número de cuenta es 2100 0418 45 0200051332",
        [("BANK_ACCOUNT", "2100 0418 45 0200051332")],
    ),
    ("es-ES", "CCC: 21000418450200051332, gracias", [("BANK_ACCOUNT", "21000418450200051332")]),
    ("es-ES", "cuenta 2100-0418-45-0200051332", [("BANK_ACCOUNT", "2100-0418-45-0200051332")]),
    ("es-ES", "referencia 2100 0418 46 0200051332", []),  # wrong check digits
    ("es-ES", "ES91 2100 0418 4502 0005 1332", [("IBAN_CODE", "ES91 2100 0418 4502 0005 1332")]),
    ("es-ES", "pedido 2024-118-553, importe 1.234,56 €", []),
    # it-IT
    (
        "it-IT",
        "Mi chiamo Marco Rossi, cellulare 333 123 4567",
        [("PERSON", "Marco Rossi"), ("PHONE_NUMBER", "333 123 4567")],
    ),
    ("it-IT", "codice fiscale rccmnl83s18d969h", [("IT_FISCAL_CODE", "rccmnl83s18d969h")]),
    ("it-IT", "Via Roma, 10, 00184 Roma", [("ADDRESS", "Via Roma, 10, 00184 Roma")]),
    ("it-IT", "ordine n. 2024-118-553, versione 10.2.3", []),
    # nl-NL
    (
        "nl-NL",
        "Ik heet Jan de Vries, bel 06-12345678",
        [("PERSON", "Jan de Vries"), ("PHONE_NUMBER", "06-12345678")],
    ),
    ("nl-NL", "mijn BSN is 111222333", [("NL_BSN", "111222333")]),
    ("nl-NL", "ticket 111222333 staat open", []),  # 11-test passes, but no BSN words
    ("nl-NL", "contact: 99 1234 5678", [("PHONE_NUMBER", "99 1234 5678")]),
    (
        "nl-NL",
        "Kalverstraat 12, 1012 NX Amsterdam",
        [("ADDRESS", "Kalverstraat 12, 1012 NX Amsterdam")],
    ),
    # pt-BR
    ("pt-BR", "meu celular é (11) 91234-5678", [("PHONE_NUMBER", "(11) 91234-5678")]),
    ("pt-BR", "Meu nome é João da Silva", [("PERSON", "João da Silva")]),
    ("pt-BR", "CPF 123.456.789-09", [("BR_CPF", "123.456.789-09")]),
    ("pt-BR", "CNPJ 11.222.333/0001-81", [("BR_CNPJ", "11.222.333/0001-81")]),
    ("pt-BR", "CPF 123.456.789-00", [("ID_NUMBER", "123.456.789-00")]),  # wrong check digits
    # "conta" (account) starts "contato" (contact): the longer phone word is what was said
    ("pt-BR", "contato 99 1234 5678", [("PHONE_NUMBER", "99 1234 5678")]),
    ("pt-BR", "conta 99 1234 5678", [("ID_NUMBER", "99 1234 5678")]),  # an account, no phone
    ("pt-BR", "pedido 2024-118-553 no valor de R$ 1.234,56", []),
    # en-GB
    ("en-GB", "my NI number is AB 12 34 56 C", [("UK_NINO", "AB 12 34 56 C")]),
    ("en-GB", "NINO QQ123456C", []),  # QQ: never issued (Q is no first letter)
    (
        "en-GB",
        "sort code 20-00-00, account number 31926819",
        [("UK_SORT_CODE", "20-00-00"), ("BANK_ACCOUNT", "31926819")],
    ),
    ("en-GB", "This is Jane Smith speaking", [("PERSON", "Jane Smith")]),
    (
        "en-GB",
        "Flat 4, Thomas Lodge, M2 0UH Manchester",
        [("ADDRESS", "Flat 4, Thomas Lodge, M2 0UH Manchester")],
    ),
    # en-US realistic variants
    ("en-US", "card 4111.1111.1111.1111", [("CREDIT_CARD", "4111.1111.1111.1111")]),
    ("en-US", "card 4111-1111 1111_1111", [("CREDIT_CARD", "4111-1111 1111_1111")]),
    (
        "en-US",
        "card 4111  1111  1111  1111 exp 12/27 cvv 123",
        [("CREDIT_CARD", "4111  1111  1111  1111"), ("CARD_EXPIRY", "12/27"), ("CARD_CVV", "123")],
    ),
    ("en-US", "security code 4321", [("CARD_CVV", "4321")]),
    ("en-US", "my ssn is 123\u201345\u20136789", [("US_SSN", "123\u201345\u20136789")]),
    ("en-US", "itin 940-30-9346 on file", [("US_SSN", "940-30-9346")]),  # 9xx with separators
    ("en-US", "ref 940309346 on file", []),  # the bare form needs an issued area
    (
        "en-US",
        "mail J\u00fcrgen.M\u00fcller@beispiel.de.",
        [("EMAIL_ADDRESS", "J\u00fcrgen.M\u00fcller@beispiel.de")],
    ),
    ("en-US", "write to info@m\u00fcnchen.de", [("EMAIL_ADDRESS", "info@m\u00fcnchen.de")]),
    ("en-US", "jane [at] example [dot] com", [("EMAIL_ADDRESS", "jane [at] example [dot] com")]),
    ("en-US", "juan arroba ejemplo punto es", [("EMAIL_ADDRESS", "juan arroba ejemplo punto es")]),
    ("en-US", "look at example.com", []),
    ("en-US", "iban gb82 west 1234 5698 7654 32", [("IBAN_CODE", "gb82 west 1234 5698 7654 32")]),
    ("en-US", "upgrade to v10.0.1, tracking 1Z999AA10123456784", []),
    # secrets
    ("en-US", "key AKIAIOSFODNN7EXAMPLE", [("SECRET_AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")]),
    (
        "en-US",
        "token ghp_EXAMPLENOTAREALGITHUBTOKEN0000000000",
        [("SECRET_GITHUB_TOKEN", "ghp_EXAMPLENOTAREALGITHUBTOKEN0000000000")],
    ),
    (
        "en-US",
        "xoxb-00000-00000-EXAMPLENOTAREALTOKEN",
        [("SECRET_SLACK_TOKEN", "xoxb-00000-00000-EXAMPLENOTAREALTOKEN")],
    ),
    (
        "en-US",
        "glpat-abcdefghij0123456789",
        [("SECRET_GITLAB_TOKEN", "glpat-abcdefghij0123456789")],
    ),
    (
        "en-US",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        [("SECRET_AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")],
    ),
    ("en-US", "password=hunter2!", [("SECRET_ASSIGNMENT", "hunter2!")]),
    ("en-US", "the password is wrong", []),
    (
        "en-US",
        "-----BEGIN RSA PRIVATE KEY-----\nTk9UQVJFQUxLRVkK\n-----END RSA PRIVATE KEY-----",
        [
            (
                "SECRET_PRIVATE_KEY",
                "-----BEGIN RSA PRIVATE KEY-----\nTk9UQVJFQUxLRVkK\n-----END RSA PRIVATE KEY-----",
            )
        ],
    ),
    ("en-US", "AKIA is a prefix and ghp_ too", []),
    # streets without a house number, postcodes typed both ways, towns with particles
    (
        "fr-FR",
        "Livraison au boulevard de Loiseau, 66632 Ramosville, tél. 0554417538",
        [
            ("ADDRESS", "boulevard de Loiseau, 66632 Ramosville"),
            ("PHONE_NUMBER", "0554417538"),
        ],
    ),
    (
        "fr-FR",
        "Nouvelle adresse : 14, boulevard Maury, 51687 Imbert-les-Bains. Commande n° 2025-438-5.",
        [("ADDRESS", "14, boulevard Maury, 51687 Imbert-les-Bains")],
    ),
    (
        "pt-BR",
        "Meu novo endereço: Estrada de Porto, 87831561 Rodrigues. Número do pedido 7435207744.",
        [("ADDRESS", "Estrada de Porto, 87831561 Rodrigues")],
    ),
    (
        "pt-BR",
        "Entregar na Rua Evelyn Rodrigues, 157, 01590501 Almeida da Praia, tel. (11) 91234-5678",
        [
            ("ADDRESS", "Rua Evelyn Rodrigues, 157, 01590501 Almeida da Praia"),
            ("PHONE_NUMBER", "(11) 91234-5678"),
        ],
    ),
    ("pt-BR", "CEP 07811-190", []),  # a postcode alone is no phone number
    (
        "nl-NL",
        "Mijn nieuwe adres: Merlestraat 9, 1570 KM Etten. Bestelnummer A8387438.",
        [("ADDRESS", "Merlestraat 9, 1570 KM Etten")],  # the order number stays out
    ),
    (
        "nl-NL",
        "Bezorgen op Kaiweg 8, 1603QE Hoek van Holland, tel. 077 106 3143",
        [("ADDRESS", "Kaiweg 8, 1603QE Hoek van Holland"), ("PHONE_NUMBER", "077 106 3143")],
    ),
    (
        "de-DE",
        "Meine neue Adresse: Bolnbachweg 3, 51973 Rothenburg ob der Tauber.",
        [("ADDRESS", "Bolnbachweg 3, 51973 Rothenburg ob der Tauber")],
    ),
    (
        "it-IT",
        "Consegna in Via Ilaria, 45 Appartamento 1, 98152 Comazzo",
        [("ADDRESS", "Via Ilaria, 45 Appartamento 1, 98152 Comazzo")],
    ),
    (
        "en-GB",
        "Deliver to 366 Barnett Branch, M35 1QT Dianaside",
        [("ADDRESS", "366 Barnett Branch, M35 1QT Dianaside")],
    ),
    # names: a signature line after a sign-off, phone-call intros, particles first
    (
        "fr-FR",
        "L'article IU-20977 est cassé. Cordialement,\nNath Besson",
        [("PERSON", "Nath Besson")],
    ),
    ("fr-FR", "Cordialement, Nath", []),  # one unknown word on the same line: no name
    (
        "de-DE",
        "Hier spricht Anna-Lena Otto, meine E-Mail ist a@b.de",
        [("PERSON", "Anna-Lena Otto"), ("EMAIL_ADDRESS", "a@b.de")],
    ),
    ("de-DE", "Hier spricht nichts dagegen", []),
    (
        "nl-NL",
        "Goedendag mevrouw van der Avoirt, pakket 289487760322 komt morgen.",
        [("PERSON", "van der Avoirt")],
    ),
    ("nl-NL", "U spreekt met Vigo Schrant.", [("PERSON", "Vigo Schrant")]),
]


@pytest.mark.parametrize(("locale", "text", "expected"), ROWS)
def test_locale_rows(locale: str, text: str, expected: list[tuple[str, str]]) -> None:
    found = [(s.entity_type, text[s.start : s.end]) for s in DETECTOR.detect(text, language=locale)]
    assert found == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a date next to an SSN: the SSN is no calendar date in any order
        (
            "born on 14/03/1985, SSN 123-45-6789",
            [("DATE_OF_BIRTH", "14/03/1985"), ("US_SSN", "123-45-6789")],
        ),
        (
            "my ssn is 123-45-6789 and I was born on 03/14/1985",
            [("US_SSN", "123-45-6789"), ("DATE_OF_BIRTH", "03/14/1985")],
        ),
        # an account number next to phone words stays an account number
        (
            "account number 12345678, phone 07700 900123",
            [("BANK_ACCOUNT", "12345678"), ("PHONE_NUMBER", "07700 900123")],
        ),
        ("call me about account number 0612345678", [("BANK_ACCOUNT", "0612345678")]),
        (
            "Kontonummer 0171940283 und Handy 0171 94028383",
            [("BANK_ACCOUNT", "0171940283"), ("PHONE_NUMBER", "0171 94028383")],
        ),
        ("passport number 912803456", [("US_PASSPORT", "912803456")]),
    ],
)
def test_types_next_to_each_other(text: str, expected: list[tuple[str, str]]) -> None:
    found = [(s.entity_type, text[s.start : s.end]) for s in DETECTOR.detect(text)]
    assert found == expected


def test_locales_decide_national_ids_and_phones() -> None:
    us_only = Detector.from_config({"detection": {"locales": ["en-US"]}})
    assert us_only.detect("Mi DNI es 12345678Z") == []
    assert us_only.detect("mon portable 06 12 34 56 78") == []
    [span] = us_only.detect("my ssn is 123-45-6789")
    assert span.entity_type == "US_SSN"


def test_language_hint_does_not_change_types() -> None:
    text = "Handynummer 0171 94028383"
    assert [s.entity_type for s in DETECTOR.detect(text, language="de-DE")] == ["PHONE_NUMBER"]
    assert [s.entity_type for s in DETECTOR.detect(text, language="xx_!")] == ["PHONE_NUMBER"]
