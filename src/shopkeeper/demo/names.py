"""Who lives where: per-locale first and last names and cities with their IANA time zones.

Plain committed lists instead of a fake-data library: the demo stays reproducible across library
upgrades, and every name, city and zone can be read and checked here. Lists are written as one
comma-separated string each so they stay compact and readable.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    timezone: str  # the city's IANA zone, so a customer's zone always fits their country
    weight: int


@dataclass(frozen=True, slots=True)
class Name:
    written: str  # as the person writes it
    latin: str  # ASCII-only spelling for the email address


@dataclass(frozen=True, slots=True)
class LocaleData:
    locale: str  # BCP 47, as analytics.js reports it in context.locale
    country: str  # ISO 3166-1 alpha-2; also the phone numbering region
    weight: int  # share of the shop's customers, in percent
    first_names: tuple[Name, ...]
    last_names: tuple[Name, ...]
    cities: tuple[City, ...]
    family_name_first: bool = False


_LATIN = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "ß": "ss", "đ": "d", "'": ""})


def latin(text: str) -> str:
    """Lower-case ASCII for an email local part: accents dropped, spaces removed."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LATIN))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _names(text: str) -> tuple[Name, ...]:
    """Names as written ("Anna, Jürgen"); "佐藤/sato" gives a name its romanisation."""
    names = []
    for item in text.split(", "):
        written, _, romanised = item.partition("/")
        names.append(Name(written, romanised or latin(written)))
    return tuple(names)


def _cities(text: str) -> tuple[City, ...]:
    """Cities written as "Name=IANA zone=weight, …"."""
    cities = []
    for item in text.split(", "):
        name, zone, weight = item.split("=")
        cities.append(City(name, zone, int(weight)))
    return tuple(cities)


LOCALES: tuple[LocaleData, ...] = (
    LocaleData(
        locale="en-US",
        country="US",
        weight=24,
        first_names=_names(
            "James, Mary, Michael, Patricia, Robert, Jennifer, John, Linda, David, Elizabeth, William, "
            "Barbara, Richard, Susan, Joseph, Jessica, Thomas, Sarah, Christopher, Karen, Daniel, Emily, "
            "Matthew, Ashley, Anthony, Madison, Tyler, Olivia, Ethan, Chloe, Jayden, Brianna"
        ),
        last_names=_names(
            "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, "
            "Hernandez, Lopez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, Thompson, "
            "White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King, Nguyen, O'Connor"
        ),
        cities=_cities(
            "New York=America/New_York=9, Boston=America/New_York=2, Philadelphia=America/New_York=2, "
            "Atlanta=America/New_York=2, Miami=America/New_York=2, Detroit=America/Detroit=1, "
            "Chicago=America/Chicago=4, Houston=America/Chicago=3, Minneapolis=America/Chicago=1, "
            "Denver=America/Denver=2, Phoenix=America/Phoenix=2, Los Angeles=America/Los_Angeles=5, San "
            "Francisco=America/Los_Angeles=2, Seattle=America/Los_Angeles=2, "
            "Portland=America/Los_Angeles=1, Anchorage=America/Anchorage=1, Honolulu=Pacific/Honolulu=1"
        ),
    ),
    LocaleData(
        locale="en-GB",
        country="GB",
        weight=13,
        first_names=_names(
            "Oliver, Amelia, George, Isla, Harry, Ava, Jack, Mia, Noah, Sophia, Charlie, Grace, Leo, "
            "Lily, Oscar, Freya, Arthur, Emily, Alfie, Poppy, Thomas, Charlotte, William, Evie, James, "
            "Sophie, Henry, Ella, Archie, Ruby"
        ),
        last_names=_names(
            "Smith, Jones, Taylor, Brown, Williams, Wilson, Johnson, Davies, Robinson, Wright, Thompson, "
            "Evans, Walker, White, Roberts, Green, Hall, Wood, Jackson, Clarke, Patel, Khan, Hughes, "
            "Edwards, Turner, Cooper, Hill, Ward, Morris, O'Brien"
        ),
        cities=_cities(
            "London=Europe/London=9, Manchester=Europe/London=3, Birmingham=Europe/London=3, "
            "Leeds=Europe/London=2, Glasgow=Europe/London=2, Bristol=Europe/London=2, "
            "Edinburgh=Europe/London=2, Liverpool=Europe/London=1, Cardiff=Europe/London=1, "
            "Belfast=Europe/London=1"
        ),
    ),
    LocaleData(
        locale="de-DE",
        country="DE",
        weight=13,
        first_names=_names(
            "Lukas, Anna, Leon, Lena, Finn, Marie, Jonas, Sophie, Paul, Laura, Felix, Lea, Maximilian, "
            "Hannah, Elias, Emilia, Ben, Mia, Niklas, Johanna, Tobias, Katharina, Moritz, Charlotte, "
            "Jürgen, Sabine, Stefan, Ute, Matthias, Jörg"
        ),
        last_names=_names(
            "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, "
            "Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun, "
            "Krüger, Hofmann, Hartmann, Lange, Schmitt, Werner, Krause, Meier, Lehmann"
        ),
        cities=_cities(
            "Berlin=Europe/Berlin=7, Hamburg=Europe/Berlin=4, München=Europe/Berlin=4, "
            "Köln=Europe/Berlin=3, Frankfurt am Main=Europe/Berlin=2, Stuttgart=Europe/Berlin=2, "
            "Düsseldorf=Europe/Berlin=2, Leipzig=Europe/Berlin=2, Dresden=Europe/Berlin=1, "
            "Nürnberg=Europe/Berlin=1"
        ),
    ),
    LocaleData(
        locale="fr-FR",
        country="FR",
        weight=10,
        first_names=_names(
            "Gabriel, Louise, Léo, Jade, Raphaël, Emma, Arthur, Alice, Louis, Chloé, Lucas, Inès, Hugo, "
            "Léa, Jules, Manon, Adam, Camille, Nathan, Lina, Théo, Juliette, Mathis, Zoé, Antoine, "
            "Élodie, François, Margaux, Benoît, Céline"
        ),
        last_names=_names(
            "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, Simon, "
            "Laurent, Lefèvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, Morel, Girard, "
            "André, Mercier, Dupont, Lambert, Bonnet, François, Martinez, Fontaine"
        ),
        cities=_cities(
            "Paris=Europe/Paris=8, Marseille=Europe/Paris=3, Lyon=Europe/Paris=3, "
            "Toulouse=Europe/Paris=2, Nice=Europe/Paris=2, Nantes=Europe/Paris=2, "
            "Strasbourg=Europe/Paris=1, Bordeaux=Europe/Paris=2, Lille=Europe/Paris=2, "
            "Rennes=Europe/Paris=1"
        ),
    ),
    LocaleData(
        locale="es-ES",
        country="ES",
        weight=7,
        first_names=_names(
            "Hugo, Lucía, Martín, Sofía, Daniel, Martina, Pablo, María, Alejandro, Julia, Lucas, Paula, "
            "Álvaro, Valeria, Adrián, Carmen, Mateo, Alba, Javier, Elena, Sergio, Laura, Diego, Noelia, "
            "Iñaki, Nerea, Jorge, Cristina"
        ),
        last_names=_names(
            "García, Rodríguez, González, Fernández, López, Martínez, Sánchez, Pérez, Gómez, Martín, "
            "Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, Alonso, Gutiérrez, Navarro, "
            "Torres, Domínguez, Vázquez, Ramos, Gil, Serrano, Ibáñez"
        ),
        cities=_cities(
            "Madrid=Europe/Madrid=7, Barcelona=Europe/Madrid=6, Valencia=Europe/Madrid=3, "
            "Sevilla=Europe/Madrid=2, Zaragoza=Europe/Madrid=2, Málaga=Europe/Madrid=2, "
            "Bilbao=Europe/Madrid=2, Palma=Europe/Madrid=1, Las Palmas de Gran Canaria=Atlantic/Canary=1, "
            "Santa Cruz de Tenerife=Atlantic/Canary=1"
        ),
    ),
    LocaleData(
        locale="it-IT",
        country="IT",
        weight=6,
        first_names=_names(
            "Leonardo, Sofia, Francesco, Giulia, Alessandro, Aurora, Lorenzo, Alice, Mattia, Ginevra, "
            "Andrea, Emma, Gabriele, Giorgia, Riccardo, Beatrice, Tommaso, Chiara, Marco, Francesca, "
            "Luca, Elena, Giuseppe, Martina, Niccolò, Federica"
        ),
        last_names=_names(
            "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno, "
            "Gallo, Conti, De Luca, Mancini, Costa, Giordano, Rizzo, Lombardi, Moretti, Barbieri, "
            "Fontana, Santoro, Mariani, Rinaldi, Caruso"
        ),
        cities=_cities(
            "Roma=Europe/Rome=6, Milano=Europe/Rome=6, Napoli=Europe/Rome=3, Torino=Europe/Rome=3, "
            "Bologna=Europe/Rome=2, Firenze=Europe/Rome=2, Palermo=Europe/Rome=2, Genova=Europe/Rome=1, "
            "Verona=Europe/Rome=1"
        ),
    ),
    LocaleData(
        locale="nl-NL",
        country="NL",
        weight=5,
        first_names=_names(
            "Daan, Emma, Sem, Julia, Lucas, Mila, Levi, Tess, Finn, Sophie, Milan, Zoë, Jesse, Sara, "
            "Bram, Anna, Thijs, Fleur, Ruben, Lotte, Sven, Eva, Joris, Sanne"
        ),
        last_names=_names(
            "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Janssen, Visser, Smit, Meijer, de "
            "Boer, Mulder, de Groot, Bos, Vos, Peters, Hendriks, van Leeuwen, Dekker, Brouwer, de Wit, "
            "Dijkstra, Smits, de Graaf"
        ),
        cities=_cities(
            "Amsterdam=Europe/Amsterdam=6, Rotterdam=Europe/Amsterdam=4, Den Haag=Europe/Amsterdam=3, "
            "Utrecht=Europe/Amsterdam=3, Eindhoven=Europe/Amsterdam=2, Groningen=Europe/Amsterdam=2, "
            "Haarlem=Europe/Amsterdam=1"
        ),
    ),
    LocaleData(
        locale="sv-SE",
        country="SE",
        weight=3,
        first_names=_names(
            "William, Alice, Liam, Maja, Noah, Elsa, Hugo, Astrid, Lucas, Wilma, Oliver, Freja, Elias, "
            "Ebba, Axel, Saga, Erik, Ingrid, Björn, Linnéa, Gustav, Sigrid"
        ),
        last_names=_names(
            "Andersson, Johansson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson, Svensson, "
            "Gustafsson, Pettersson, Jonsson, Jansson, Hansson, Bengtsson, Jönsson, Lindberg, Jakobsson, "
            "Magnusson, Lindström, Åberg, Söderberg"
        ),
        cities=_cities(
            "Stockholm=Europe/Stockholm=6, Göteborg=Europe/Stockholm=3, Malmö=Europe/Stockholm=3, "
            "Uppsala=Europe/Stockholm=2, Västerås=Europe/Stockholm=1, Umeå=Europe/Stockholm=1"
        ),
    ),
    LocaleData(
        locale="pl-PL",
        country="PL",
        weight=4,
        first_names=_names(
            "Jakub, Zuzanna, Antoni, Julia, Jan, Zofia, Szymon, Hanna, Franciszek, Maja, Filip, Lena, "
            "Aleksander, Alicja, Mikołaj, Oliwia, Łukasz, Agnieszka, Paweł, Małgorzata, Krzysztof, "
            "Katarzyna, Piotr, Magdalena"
        ),
        last_names=_names(
            "Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, Zieliński, Szymański, "
            "Woźniak, Dąbrowski, Kozłowski, Jankowski, Mazur, Wojciechowski, Kwiatkowski, Krawczyk, "
            "Kaczmarek, Piotrowski, Grabowski, Zając, Pawłowski, Michalski, Król"
        ),
        cities=_cities(
            "Warszawa=Europe/Warsaw=6, Kraków=Europe/Warsaw=4, Wrocław=Europe/Warsaw=3, "
            "Poznań=Europe/Warsaw=2, Gdańsk=Europe/Warsaw=2, Łódź=Europe/Warsaw=2, "
            "Szczecin=Europe/Warsaw=1"
        ),
    ),
    LocaleData(
        locale="pt-BR",
        country="BR",
        weight=5,
        first_names=_names(
            "Miguel, Helena, Arthur, Alice, Gael, Laura, Heitor, Maria Alice, Theo, Valentina, Davi, "
            "Heloísa, Gabriel, Maria Clara, Bernardo, Cecília, Samuel, Júlia, João Pedro, Beatriz, Lucas, "
            "Fernanda, Rafael, Camila, Thiago, Letícia"
        ),
        last_names=_names(
            "Silva, Santos, Oliveira, Souza, Rodrigues, Ferreira, Alves, Pereira, Lima, Gomes, Costa, "
            "Ribeiro, Martins, Carvalho, Almeida, Lopes, Soares, Fernandes, Vieira, Barbosa, Rocha, Dias, "
            "Nascimento, Araújo, Conceição, Moreira"
        ),
        cities=_cities(
            "São Paulo=America/Sao_Paulo=8, Rio de Janeiro=America/Sao_Paulo=5, Belo "
            "Horizonte=America/Sao_Paulo=2, Brasília=America/Sao_Paulo=2, Curitiba=America/Sao_Paulo=2, "
            "Porto Alegre=America/Sao_Paulo=2, Salvador=America/Bahia=2, Fortaleza=America/Fortaleza=2, "
            "Recife=America/Recife=2, Belém=America/Belem=1, Manaus=America/Manaus=1"
        ),
    ),
    LocaleData(
        locale="ja-JP",
        country="JP",
        weight=4,
        first_names=_names(
            "陽翔/haruto, 蓮/ren, 湊/minato, 大翔/hiroto, 悠真/yuma, 蒼/ao, 樹/itsuki, "
            "颯太/sota, 健太/kenta, 翔太/shota, 陽葵/himari, 凛/rin, 結菜/yuna, 葵/aoi, "
            "芽依/mei, 紬/tsumugi, さくら/sakura, 美咲/misaki, 愛/ai, 花子/hanako"
        ),
        last_names=_names(
            "佐藤/sato, 鈴木/suzuki, 高橋/takahashi, 田中/tanaka, 伊藤/ito, 渡辺/watanabe, "
            "山本/yamamoto, 中村/nakamura, 小林/kobayashi, 加藤/kato, 吉田/yoshida, 山田/yamada, "
            "佐々木/sasaki, 山口/yamaguchi, 松本/matsumoto, 井上/inoue, 木村/kimura, 林/hayashi, "
            "斎藤/saito, 清水/shimizu"
        ),
        cities=_cities(
            "東京=Asia/Tokyo=8, 横浜=Asia/Tokyo=3, 大阪=Asia/Tokyo=4, 名古屋=Asia/Tokyo=2, 札幌=Asia/Tokyo=2, "
            "福岡=Asia/Tokyo=2, 京都=Asia/Tokyo=1, 神戸=Asia/Tokyo=1"
        ),
        family_name_first=True,
    ),
    LocaleData(
        locale="en-AU",
        country="AU",
        weight=3,
        first_names=_names(
            "Oliver, Charlotte, Noah, Amelia, Jack, Isla, William, Olivia, Leo, Mia, Lucas, Ava, Henry, "
            "Grace, Thomas, Chloe, Cooper, Matilda, Lachlan, Zoe"
        ),
        last_names=_names(
            "Smith, Jones, Williams, Brown, Wilson, Taylor, Johnson, White, Martin, Anderson, Thompson, "
            "Nguyen, Thomas, Walker, Harris, Lee, Ryan, Robinson, Kelly, King"
        ),
        cities=_cities(
            "Sydney=Australia/Sydney=6, Canberra=Australia/Sydney=1, Melbourne=Australia/Melbourne=6, "
            "Brisbane=Australia/Brisbane=3, Perth=Australia/Perth=3, Adelaide=Australia/Adelaide=2, "
            "Hobart=Australia/Hobart=1, Darwin=Australia/Darwin=1"
        ),
    ),
    LocaleData(
        locale="es-MX",
        country="MX",
        weight=3,
        first_names=_names(
            "Santiago, Sofía, Mateo, Valentina, Sebastián, Regina, Leonardo, Camila, Emiliano, María "
            "José, Diego, Ximena, Miguel Ángel, Fernanda, José Luis, Guadalupe, Alejandro, Daniela, "
            "Rodrigo, Mariana"
        ),
        last_names=_names(
            "Hernández, García, Martínez, López, González, Pérez, Rodríguez, Sánchez, Ramírez, Cruz, "
            "Flores, Gómez, Morales, Vázquez, Reyes, Jiménez, Torres, Díaz, Gutiérrez, Ruiz"
        ),
        cities=_cities(
            "Ciudad de México=America/Mexico_City=8, Guadalajara=America/Mexico_City=3, "
            "Puebla=America/Mexico_City=2, Monterrey=America/Monterrey=3, Tijuana=America/Tijuana=2, "
            "Mérida=America/Merida=1, Cancún=America/Cancun=1, Chihuahua=America/Chihuahua=1"
        ),
    ),
)
