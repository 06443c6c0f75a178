"""Generate the labelled multilingual dev set `bench/data/locales_dev.jsonl` (seeded).

    python bench/data/gen_locales.py [--seed 16] [--per-locale 150] [--out PATH]

Chat-style templates per locale (de-DE, fr-FR, es-ES, it-IT, nl-NL, pt-BR, en-GB, en-US),
filled by Faker's locale providers (names, streets, postcodes, cities, IBANs, e-mail
addresses, phone numbers, national ids). Values are what people type: phone numbers
written the national way most of the time (the plan's national format, digits run
together, or other separators), lower-case IBANs now and then, names after an intro phrase,
a title or a sign-off. Phone numbers Faker makes that are not valid in their plan are
redrawn (a number nobody can dial is not a phone number); national ids come from Faker
where it has them and are checked with python-stdnum, and the two it lacks (UK NINO, DE
Steuer-ID) are drawn here under the published rules.

Every row also carries hard negatives: order, invoice, ticket and tracking numbers, amounts
with `,` or `.` decimals, times, appointment dates, product codes and versions, each with
its offsets under `negatives` (they must reach the bot untouched).

The detector's first-name list (gender-guesser) is not used here; Faker's own lists are.
Row: {"id", "locale", "text", "spans": [{entity_type, start, end, value}],
"negatives": [{kind, start, end, value}]}.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

import phonenumbers
from faker import Faker
from stdnum.de import idnr
from stdnum.iso7064 import mod_11_10

OUT = Path(__file__).resolve().parent / "locales_dev.jsonl"
LOCALES = {
    "de-DE": ("de_DE", "DE"),
    "fr-FR": ("fr_FR", "FR"),
    "es-ES": ("es_ES", "ES"),
    "it-IT": ("it_IT", "IT"),
    "nl-NL": ("nl_NL", "NL"),
    "pt-BR": ("pt_BR", "BR"),
    "en-GB": ("en_GB", "GB"),
    "en-US": ("en_US", "US"),
}

# Templates: {TYPE} is a labelled value, {NEG_kind} a labelled hard negative, {LAST} a
# surname after a title (labelled PERSON).
T: dict[str, list[str]] = {
    "de": [
        "Hallo, ich heiße {PERSON}. Meine Handynummer ist {PHONE_NUMBER}.",
        "Mein Name ist {PERSON}, bitte rufen Sie mich unter {PHONE_NUMBER} zurück.",
        "Meine neue Adresse: {ADDRESS}. Die Bestellnummer ist {NEG_ORDER}.",
        "Bitte überweisen Sie {NEG_AMOUNT} auf mein Konto, IBAN {IBAN_CODE}.",
        "Die Rechnung {NEG_INVOICE} über {NEG_AMOUNT} ist noch offen, mail an {EMAIL_ADDRESS}",
        "Termin am {NEG_DATE} um {NEG_TIME}? Sie erreichen mich unter {PHONE_NUMBER}.",
        "Meine Steuer-ID ist {DE_TAX_ID}, Aktenzeichen {NEG_TICKET}.",
        "Guten Tag Herr {LAST}, das Paket {NEG_TRACKING} kommt morgen.",
        "Artikel {NEG_PRODUCT} ist defekt, App-Version {NEG_VERSION}. Viele Grüße\n{PERSON}",
        "Lieferung bitte an {ADDRESS}, Tel. {PHONE_NUMBER}",
        "Karte {CREDIT_CARD} wurde belastet, Betrag {NEG_AMOUNT}.",
        "Hier spricht {PERSON}, meine E-Mail ist {EMAIL_ADDRESS}.",
    ],
    "fr": [
        "Bonjour, je m'appelle {PERSON} et mon portable est le {PHONE_NUMBER}.",
        "Mon nom est {PERSON}, rappelez-moi au {PHONE_NUMBER} s'il vous plaît.",
        "Ma nouvelle adresse : {ADDRESS}. Commande n° {NEG_ORDER}.",
        "Merci de rembourser {NEG_AMOUNT} sur mon IBAN {IBAN_CODE}.",
        "La facture {NEG_INVOICE} de {NEG_AMOUNT} n'est pas réglée, écrivez à {EMAIL_ADDRESS}",
        "Rendez-vous le {NEG_DATE} à {NEG_TIME} ? Mon numéro : {PHONE_NUMBER}.",
        "Mon numéro de sécurité sociale est {FR_NIR}, dossier {NEG_TICKET}.",
        "Bonjour Mme {LAST}, le colis {NEG_TRACKING} arrive demain.",
        "L'article {NEG_PRODUCT} est cassé, version {NEG_VERSION}. Cordialement,\n{PERSON}",
        "Livraison au {ADDRESS}, tél. {PHONE_NUMBER}",
        "Ma carte {CREDIT_CARD} a été débitée de {NEG_AMOUNT}.",
        "C'est {PERSON} à l'appareil, mon e-mail est {EMAIL_ADDRESS}.",
    ],
    "es": [
        "Hola, me llamo {PERSON} y mi móvil es {PHONE_NUMBER}.",
        "Mi nombre es {PERSON}, llámame al {PHONE_NUMBER} por favor.",
        "Mi nueva dirección: {ADDRESS}. Número de pedido {NEG_ORDER}.",
        "Por favor devuelvan {NEG_AMOUNT} a mi cuenta IBAN {IBAN_CODE}.",
        "La factura {NEG_INVOICE} de {NEG_AMOUNT} sigue pendiente, escribid a {EMAIL_ADDRESS}",
        "¿Cita el {NEG_DATE} a las {NEG_TIME}? Mi teléfono es {PHONE_NUMBER}.",
        "Mi DNI es {ES_NIF} y la incidencia {NEG_TICKET}.",
        "Mi NIE es {ES_NIE}, gracias.",
        "Buenos días Sra. {LAST}, el envío {NEG_TRACKING} llega mañana.",
        "El artículo {NEG_PRODUCT} no funciona, versión {NEG_VERSION}. Saludos,\n{PERSON}",
        "Envíenlo a {ADDRESS}, tel. {PHONE_NUMBER}",
        "Me han cobrado {NEG_AMOUNT} en la tarjeta {CREDIT_CARD}.",
    ],
    "it": [
        "Ciao, mi chiamo {PERSON} e il mio cellulare è {PHONE_NUMBER}.",
        "Il mio nome è {PERSON}, chiamatemi al {PHONE_NUMBER} per favore.",
        "Il mio nuovo indirizzo: {ADDRESS}. Numero d'ordine {NEG_ORDER}.",
        "Per favore rimborsate {NEG_AMOUNT} sul mio IBAN {IBAN_CODE}.",
        "La fattura {NEG_INVOICE} di {NEG_AMOUNT} è ancora aperta, scrivete a {EMAIL_ADDRESS}",
        "Appuntamento il {NEG_DATE} alle {NEG_TIME}? Il mio numero è {PHONE_NUMBER}.",
        "Il mio codice fiscale è {IT_FISCAL_CODE}, pratica {NEG_TICKET}.",
        "Buongiorno Sig.ra {LAST}, la spedizione {NEG_TRACKING} arriva domani.",
        "L'articolo {NEG_PRODUCT} è rotto, versione {NEG_VERSION}. Cordiali saluti,\n{PERSON}",
        "Consegna in {ADDRESS}, tel. {PHONE_NUMBER}",
        "Sulla carta {CREDIT_CARD} hanno addebitato {NEG_AMOUNT}.",
        "Sono {PERSON}, la mia email è {EMAIL_ADDRESS}.",
    ],
    "nl": [
        "Hallo, ik heet {PERSON} en mijn mobiele nummer is {PHONE_NUMBER}.",
        "Mijn naam is {PERSON}, bel me terug op {PHONE_NUMBER} alstublieft.",
        "Mijn nieuwe adres: {ADDRESS}. Bestelnummer {NEG_ORDER}.",
        "Graag {NEG_AMOUNT} terugstorten op mijn IBAN {IBAN_CODE}.",
        "Factuur {NEG_INVOICE} van {NEG_AMOUNT} staat nog open, mail naar {EMAIL_ADDRESS}",
        "Afspraak op {NEG_DATE} om {NEG_TIME}? Mijn telefoon: {PHONE_NUMBER}.",
        "Mijn BSN is {NL_BSN}, dossier {NEG_TICKET}.",
        "Goedendag mevrouw {LAST}, pakket {NEG_TRACKING} komt morgen.",
        "Artikel {NEG_PRODUCT} is kapot, versie {NEG_VERSION}. Met vriendelijke groet,\n{PERSON}",
        "Bezorgen op {ADDRESS}, tel. {PHONE_NUMBER}",
        "Op mijn kaart {CREDIT_CARD} is {NEG_AMOUNT} afgeschreven.",
        "U spreekt met {PERSON}, mijn e-mail is {EMAIL_ADDRESS}.",
    ],
    "pt": [
        "Oi, meu nome é {PERSON} e meu celular é {PHONE_NUMBER}.",
        "Me chamo {PERSON}, me liga no {PHONE_NUMBER} por favor.",
        "Meu novo endereço: {ADDRESS}. Número do pedido {NEG_ORDER}.",
        "Por favor devolvam {NEG_AMOUNT} na minha conta IBAN {IBAN_CODE}.",
        "A fatura {NEG_INVOICE} de {NEG_AMOUNT} está em aberto, mande para {EMAIL_ADDRESS}",
        "Consulta dia {NEG_DATE} às {NEG_TIME}? Meu telefone é {PHONE_NUMBER}.",
        "Meu CPF é {BR_CPF}, protocolo {NEG_TICKET}.",
        "O CNPJ da empresa é {BR_CNPJ}.",
        "Bom dia Sra. {LAST}, a encomenda {NEG_TRACKING} chega amanhã.",
        "O produto {NEG_PRODUCT} quebrou, versão {NEG_VERSION}. Atenciosamente,\n{PERSON}",
        "Entregar na {ADDRESS}, tel. {PHONE_NUMBER}",
        "Cobraram {NEG_AMOUNT} no meu cartão {CREDIT_CARD}.",
    ],
    "en-GB": [
        "Hi, my name is {PERSON}, my mobile is {PHONE_NUMBER}.",
        "This is {PERSON} speaking, please ring me back on {PHONE_NUMBER}.",
        "My new address is {ADDRESS}. Order number {NEG_ORDER}.",
        "Please refund {NEG_AMOUNT} to IBAN {IBAN_CODE}.",
        "Invoice {NEG_INVOICE} for {NEG_AMOUNT} is unpaid, email {EMAIL_ADDRESS}",
        "Appointment on {NEG_DATE} at {NEG_TIME}? My number is {PHONE_NUMBER}.",
        "My national insurance number is {UK_NINO}, case {NEG_TICKET}.",
        "Sort code {UK_SORT_CODE}, account number {BANK_ACCOUNT}, phone {PHONE_NUMBER}.",
        "Dear Mrs {LAST}, parcel {NEG_TRACKING} arrives tomorrow.",
        "Item {NEG_PRODUCT} is broken, app version {NEG_VERSION}. Kind regards,\n{PERSON}",
        "Deliver to {ADDRESS}, tel {PHONE_NUMBER}",
        "My card {CREDIT_CARD} exp {CARD_EXPIRY} cvv {CARD_CVV} was charged {NEG_AMOUNT}.",
    ],
    "en-US": [
        "Hi, my name is {PERSON}, call me at {PHONE_NUMBER}.",
        "I'm {PERSON}, my SSN is {US_SSN} and I was born on {DATE_OF_BIRTH}.",
        "I was born on {DATE_OF_BIRTH}, SSN {US_SSN}.",
        "My new address is {ADDRESS}. Order number {NEG_ORDER}.",
        "Invoice {NEG_INVOICE} for {NEG_AMOUNT} is unpaid, email {EMAIL_ADDRESS}",
        "Appointment on {NEG_DATE} at {NEG_TIME}? Text me at {PHONE_NUMBER}.",
        "card {CREDIT_CARD} {CARD_EXPIRY} {CARD_CVV}, total {NEG_AMOUNT}",
        "reach me at {EMAIL_ADDRESS}, ticket {NEG_TICKET}",
        "here is my key {SECRET_AWS_ACCESS_KEY} and token {SECRET_GITHUB_TOKEN}",
        "slack bot token {SECRET_SLACK_TOKEN}, build {NEG_VERSION}",
        "config: password={SECRET_ASSIGNMENT} (product {NEG_PRODUCT})",
        "jwt {SECRET_JWT} expired at {NEG_TIME}",
        "{SECRET_PRIVATE_KEY}",
        "Thanks, tracking {NEG_TRACKING}. Best regards,\n{PERSON}",
    ],
}
_LANG = {"de-DE": "de", "fr-FR": "fr", "es-ES": "es", "it-IT": "it", "nl-NL": "nl"}
_LANG |= {"pt-BR": "pt", "en-GB": "en-GB", "en-US": "en-US"}

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
_B64 = string.ascii_letters + string.digits


class Values:
    """Draws the values of one locale."""

    def __init__(self, locale: str, seed: int) -> None:
        faker_locale, region = LOCALES[locale]
        self.fake = Faker(faker_locale)
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.region = region
        self.locale = locale

    def value(self, key: str) -> str:
        method: Callable[[], str] = getattr(self, key.lower())
        return method()

    def person(self) -> str:
        return f"{self.fake.first_name()} {self.fake.last_name()}"

    def last(self) -> str:
        return str(self.fake.last_name())

    def phone_number(self) -> str:
        while True:
            raw = self.fake.phone_number()
            try:
                number = phonenumbers.parse(raw, self.region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number_for_region(number, self.region):
                break
        style = self.rng.random()
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        if style < 0.45:
            return national
        if style < 0.6:
            return "".join(c for c in national if c.isdigit())
        if style < 0.75:
            sep = self.rng.choice(["/", ".", "-"])
            return national.replace(" ", sep, 1) if " " in national else national
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    def email_address(self) -> str:
        style = self.rng.random()
        if style < 0.15 and self.locale in ("de-DE", "fr-FR", "es-ES", "pt-BR"):
            first = self.fake.first_name().split()[0]
            last = self.fake.last_name().split()[0]
            return f"{first}.{last}@{self.fake.domain_word()}.{self.fake.tld()}"  # Unicode
        if style < 0.25:
            user, domain = self.fake.email().split("@")
            host, tld = domain.rsplit(".", 1)
            return f"{user} [at] {host} [dot] {tld}"
        return str(self.fake.email())

    def iban_code(self) -> str:
        value = str(self.fake.iban())
        grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        style = self.rng.random()
        if style < 0.2:
            return grouped.lower()
        return grouped if style < 0.7 else value

    def address(self) -> str:
        street = self.fake.street_address().replace("\n", ", ")
        return f"{street}, {self.fake.postcode()} {self.fake.city()}"

    def credit_card(self) -> str:
        number = self.fake.credit_card_number(card_type=self.rng.choice(["visa16", "mastercard"]))
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        style = self.rng.random()
        if style < 0.3:
            return " ".join(groups)
        if style < 0.45:
            return ".".join(groups)
        if style < 0.55:
            return "-".join(groups[:2]) + " " + " ".join(groups[2:])
        if style < 0.65:
            return " ".join(groups).translate(ARABIC_INDIC)
        if style < 0.72:
            return " ".join(groups).translate(DEVANAGARI)
        return number

    def card_expiry(self) -> str:
        return f"{self.rng.randint(1, 12):02d}/{self.rng.randint(26, 31)}"

    def card_cvv(self) -> str:
        return f"{self.rng.randint(100, 999)}"

    def us_ssn(self) -> str:
        while True:
            value = str(self.fake.ssn())
            if not value.startswith(("9", "666", "000")):
                break
        return value.replace("-", self.rng.choice(["-", "\u2013", " "]))

    def date_of_birth(self) -> str:
        born = self.fake.date_of_birth(minimum_age=18, maximum_age=90)
        return born.strftime(self.rng.choice(["%m/%d/%Y", "%B %d, %Y", "%d %B %Y"]))

    def uk_nino(self) -> str:
        first = self.rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = self.rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            return self.uk_nino()
        digits = f"{self.rng.randint(0, 999999):06d}"
        suffix = self.rng.choice("ABCD")
        if self.rng.random() < 0.5:
            return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{first}{second}{digits}{suffix}"

    def uk_sort_code(self) -> str:
        return "-".join(f"{self.rng.randint(0, 99):02d}" for _ in range(3))

    def bank_account(self) -> str:
        return f"{self.rng.randint(10000000, 99999999)}"

    def de_tax_id(self) -> str:
        while True:
            digits = list(range(10))
            self.rng.shuffle(digits)
            body = digits[:9]
            body.insert(self.rng.randint(1, 9), body[self.rng.randint(0, 8)])
            base = "".join(map(str, body))
            if base[0] == "0":
                continue
            value = base + mod_11_10.calc_check_digit(base)
            if idnr.is_valid(value):
                return f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"

    def fr_nir(self) -> str:
        value = str(self.fake.ssn())
        if self.rng.random() < 0.5:
            return value
        parts = (value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13])
        return " ".join(parts) + " " + value[13:]

    def es_nif(self) -> str:
        return str(self.fake.nif())

    def es_nie(self) -> str:
        return str(self.fake.nie())

    def it_fiscal_code(self) -> str:
        value = str(self.fake.ssn())
        return value.lower() if self.rng.random() < 0.15 else value

    def nl_bsn(self) -> str:
        return str(self.fake.ssn())

    def br_cpf(self) -> str:
        return str(self.fake.cpf())

    def br_cnpj(self) -> str:
        return str(self.fake.cnpj())

    def _token(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def secret_aws_access_key(self) -> str:
        return "AKIA" + self._token(string.ascii_uppercase + string.digits, 16)

    def secret_github_token(self) -> str:
        return "ghp_" + self._token(_B64, 36)

    def secret_slack_token(self) -> str:
        team = self._token(string.digits, 11)
        bot = self._token(string.digits, 13)
        return f"xoxb-{team}-{bot}-{self._token(_B64, 24)}"

    def secret_assignment(self) -> str:
        return self._token(_B64, 10) + self.rng.choice("!#%&*") + self._token(string.digits, 2)

    def secret_jwt(self) -> str:
        def part(data: dict[str, object]) -> str:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        head = part({"alg": "HS256", "typ": "JWT"})
        body = part({"sub": self._token(string.digits, 8), "iat": self.rng.randint(1, 2**31)})
        return f"{head}.{body}.{self._token(_B64 + '-_', 43)}"

    def secret_private_key(self) -> str:
        lines = [self._token(_B64 + "+/", 64) for _ in range(4)]
        body = "\n".join(lines)
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"

    # hard negatives -------------------------------------------------------------------
    def neg_order(self) -> str:
        year = self.rng.randint(2019, 2026)
        return self.rng.choice(
            [
                f"{year}-{self.rng.randint(100, 999)}-{self.rng.randint(100, 999)}",
                f"{self.rng.randint(10**8, 10**10)}",
                f"A{self.rng.randint(10**6, 10**7)}",
            ]
        )

    def neg_invoice(self) -> str:
        prefix = self.rng.choice(["INV", "RE", "FA", "F"])
        return f"{prefix}-{self.rng.randint(2019, 2026)}-{self.rng.randint(1000, 99999)}"

    def neg_ticket(self) -> str:
        return f"{self.rng.randint(10**6, 10**9)}"

    def neg_tracking(self) -> str:
        return self.rng.choice(
            [
                f"1Z{self._token(string.ascii_uppercase + string.digits, 16)}",
                f"{self.rng.randint(10**11, 10**12)}",
                f"JJD{self.rng.randint(10**13, 10**14)}",
            ]
        )

    def neg_amount(self) -> str:
        whole = self.rng.randint(1, 99999)
        cents = self.rng.randint(0, 99)
        if self.locale in ("en-US", "en-GB"):
            symbol = "$" if self.locale == "en-US" else "£"
            return f"{symbol}{whole:,}.{cents:02d}"
        body = f"{whole:,}".replace(",", ".") + f",{cents:02d}"
        return f"R$ {body}" if self.locale == "pt-BR" else f"{body} €"

    def neg_time(self) -> str:
        hour, minute = self.rng.randint(7, 20), self.rng.choice([0, 15, 30, 45])
        if self.locale == "fr-FR" and self.rng.random() < 0.5:
            return f"{hour}h{minute:02d}"
        return f"{hour}:{minute:02d}"

    def neg_date(self) -> str:
        day, month, year = self.rng.randint(1, 28), self.rng.randint(1, 12), 2026
        if self.locale == "en-US":
            return f"{month}/{day}/{year}"
        sep = "." if self.locale in ("de-DE",) else "/"
        if self.locale == "nl-NL":
            sep = "-"
        return f"{day:02d}{sep}{month:02d}{sep}{year}"

    def neg_product(self) -> str:
        return f"{self._token(string.ascii_uppercase, 2)}-{self.rng.randint(1000, 99999)}"

    def neg_version(self) -> str:
        return f"{self.rng.randint(1, 20)}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 99)}"


def fill(template: str, values: Values) -> dict[str, object]:
    """The template with values put in, and the offsets of each."""
    text, spans, negatives = "", [], []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        key, _, rest = after.partition("}")
        text += before
        value = values.value(key)
        start = len(text)
        text += value
        if key.startswith("NEG_"):
            negatives.append(
                {"kind": key[4:].lower(), "start": start, "end": len(text), "value": value}
            )
        else:
            entity = "PERSON" if key == "LAST" else key
            spans.append({"entity_type": entity, "start": start, "end": len(text), "value": value})
    text += rest
    return {"text": text, "spans": spans, "negatives": negatives}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--per-locale", type=int, default=150)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = []
    for index, locale in enumerate(LOCALES):
        values = Values(locale, args.seed * 100 + index)
        templates = T[_LANG[locale]]
        for n in range(args.per_locale):
            row = fill(templates[n % len(templates)], values)
            rows.append({"id": len(rows), "locale": locale, **row})
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
