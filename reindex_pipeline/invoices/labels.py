"""The vocabulary the extractor reads: field labels and document titles in English, German, French,
Spanish, Dutch and Polish. Lower case; matched at word starts, longest first."""

from __future__ import annotations

#: field -> language -> labels
FIELD_LABELS: dict[str, dict[str, list[str]]] = {
    "invoice_number": {
        "en": ["invoice number", "invoice no", "invoice nr", "invoice #", "invoice id", "invoice:", "receipt number",
               "receipt no", "receipt #", "bill number", "vat invoice no"],
        "de": ["rechnungsnummer", "rechnungs-nr", "rechnungsnr", "rechnung nr", "rechnung #", "belegnummer",
               "beleg-nr", "bon-nr", "quittungsnummer"],
        "fr": ["numéro de facture", "n° de facture", "no de facture", "facture n°", "facture no", "ticket n°",
               "numéro de reçu"],
        "es": ["número de factura", "nº de factura", "n.º de factura", "factura n.º", "factura nº", "factura no",
               "ticket n.º", "número de recibo"],
        "nl": ["factuurnummer", "factuurnr", "factuur nr", "bonnummer"],
        "pl": ["numer faktury", "faktura vat nr", "faktura nr", "nr faktury", "numer paragonu"],
    },
    "invoice_date": {
        "en": ["invoice date", "date of issue", "date issued", "issue date", "issued on", "date of invoice",
               "billing date", "receipt date", "document date", "date"],
        "de": ["rechnungsdatum", "ausstellungsdatum", "belegdatum", "datum"],
        "fr": ["date de facture", "date de facturation", "date d'émission", "date"],
        "es": ["fecha de factura", "fecha de emisión", "fecha de expedición", "fecha"],
        "nl": ["factuurdatum", "datum"],
        "pl": ["data wystawienia", "data faktury", "data"],
    },
    "due_date": {
        "en": ["due date", "date due", "payment due", "due by", "pay by"],
        "de": ["fällig am", "fälligkeitsdatum", "zahlbar bis", "fällig"],
        "fr": ["date d'échéance", "échéance", "à payer avant le"],
        "es": ["fecha de vencimiento", "vencimiento"],
        "nl": ["vervaldatum", "te betalen voor"],
        "pl": ["termin płatności", "termin zapłaty"],
    },
    "total": {
        "en": ["total", "grand total", "invoice total", "total due", "amount due", "total amount", "total paid",
               "balance due", "amount paid", "total amount paid", "invoice amount", "total at checkout",
               "amount payable", "total payable"],
        "de": ["gesamtbetrag", "gesamtsumme", "summe brutto", "rechnungsbetrag", "endbetrag", "bruttobetrag",
               "gesamt brutto", "zu zahlen", "zahlbetrag", "summe", "gesamt", "total"],
        "fr": ["total ttc", "montant total", "total à payer", "net à payer", "montant ttc", "total"],
        "es": ["total factura", "importe total", "total a pagar", "total"],
        "nl": ["totaal", "totaalbedrag", "te betalen", "totaal incl. btw", "totaal te betalen"],
        "pl": ["razem do zapłaty", "do zapłaty", "razem", "suma", "wartość brutto", "kwota brutto"],
    },
    "subtotal": {
        "en": ["subtotal", "sub-total", "sub total", "net amount", "net total", "total excl. vat", "total excl. tax",
               "total ex. tax", "total ex tax", "total before tax", "total net", "amount excl. vat", "purchases"],
        "de": ["zwischensumme", "nettobetrag", "gesamtnetto", "summe netto", "netto", "nettosumme"],
        "fr": ["sous-total", "total ht", "montant ht"],
        "es": ["subtotal", "base imponible"],
        "nl": ["subtotaal", "totaal excl. btw", "netto bedrag"],
        "pl": ["wartość netto", "razem netto", "suma netto", "netto"],
    },
    "tax": {
        "en": ["vat", "tax", "sales tax", "gst", "hst"],
        "de": ["mwst", "mwst.", "ust", "ust.", "umsatzsteuer", "mehrwertsteuer"],
        "fr": ["tva"],
        "es": ["iva"],
        "nl": ["btw"],
        "pl": ["vat", "podatek"],
    },
    "currency": {
        "en": ["currency", "payment currency"],
        "de": ["währung"],
        "fr": ["devise", "monnaie"],
        "es": ["moneda", "divisa"],
        "nl": ["valuta", "munteenheid"],
        "pl": ["waluta"],
    },
    "vendor": {
        "en": ["from", "seller", "vendor", "supplier", "issued by", "provided by", "product(s) provided by",
               "billed by", "sold by", "merchant", "payee"],
        "de": ["verkäufer", "absender", "lieferant", "rechnungssteller", "leistungserbringer"],
        "fr": ["émetteur", "vendeur", "fournisseur", "prestataire"],
        "es": ["emisor", "vendedor", "proveedor"],
        "nl": ["verkoper", "leverancier", "afzender"],
        "pl": ["sprzedawca", "wystawca", "dostawca"],
    },
    "customer": {
        "en": ["bill to", "billed to", "invoice to", "invoiced to", "sold to", "customer", "client", "buyer", "to",
               "licensed to", "recipient"],
        "de": ["rechnungsempfänger", "rechnung an", "kunde", "empfänger", "auftraggeber", "käufer"],
        "fr": ["facturé à", "client", "destinataire", "acheteur"],
        "es": ["facturar a", "facturado a", "cliente", "comprador"],
        "nl": ["factuur aan", "gefactureerd aan", "klant", "koper"],
        "pl": ["nabywca", "odbiorca", "kupujący", "płatnik"],
    },
}

# Labels are matched longest first, so "total ex. tax" (a subtotal) wins over "total".

#: document type -> language -> title words
TITLES: dict[str, dict[str, list[str]]] = {
    "receipt": {"en": ["receipt", "payment receipt", "sales receipt"], "de": ["kassenbon", "quittung", "kassenbeleg"],
                "fr": ["reçu", "ticket de caisse"], "es": ["recibo", "ticket"], "nl": ["kassabon", "kwitantie"],
                "pl": ["paragon", "paragon fiskalny", "pokwitowanie"]},
    "invoice": {"en": ["invoice", "tax invoice", "vat invoice"], "de": ["rechnung"], "fr": ["facture"],
                "es": ["factura"], "nl": ["factuur"], "pl": ["faktura", "faktura vat"]},
}

#: line-item table column headers: column -> labels (all languages)
ITEM_COLUMNS: dict[str, list[str]] = {
    "description": ["description", "item", "items", "product", "products", "service", "services", "article",
                    "item name or type of service", "charge name", "beschreibung", "bezeichnung", "artikel", "leistung",
                    "produkt", "désignation", "descripción", "concepto", "artículo", "omschrijving", "nazwa",
                    "nazwa towaru lub usługi", "towar", "usługa"],
    "quantity": ["qty", "quantity", "units", "menge", "anzahl", "qté", "quantité", "cant.", "cantidad", "aantal",
                 "ilość", "szt"],
    "unit_price": ["unit price", "price", "rate", "einzelpreis", "preis", "prix unitaire", "prix", "precio unitario",
                   "precio", "prijs", "stukprijs", "cena", "cena jedn.", "unit net price"],
    "amount": ["amount", "total", "line total", "betrag", "gesamt", "summe", "montant", "importe", "bedrag",
               "wartość", "gross value", "net amount"],
}
