"""Generate the bundled question set from the fact tables in this script.

    python tools/make_questions.py            # writes src/truthtrace/data/bundled/questions.jsonl
    python tools/make_questions.py --check    # only validate and print counts per category

Ids are ``<prefix>-NNNN``, numbered in the order a category's builder emits questions;
once a set is released, add new facts only at the end of a builder's output (e.g. a new
table appended last) so that existing ids keep pointing at the same questions.
The fact tables hold only facts we are sure of; questions whose answer is disputed or
has changed recently (e.g. the most populous country) are left out on purpose.
Every alias is checked not to appear (as whole normalized tokens) in its own question,
so ``contains`` cannot be satisfied by a model that merely repeats the question.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from truthtrace.data.questions import Question, save_questions
from truthtrace.labels.score import normalize_tokens

OUT = Path(__file__).resolve().parents[1] / "src/truthtrace/data/bundled/questions.jsonl"


# ---------------------------------------------------------------- helpers
_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
_ROUND = {30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty",
          90: "ninety", 100: "one hundred", 1000: "one thousand"}


def num(n: int) -> list[str]:
    """Aliases of a whole number: digits, plus words when short."""
    words = _WORDS[n] if 0 <= n <= 20 else _ROUND.get(n)
    return [str(n)] + ([words] if words else [])


US = ["United States", "USA", "U.S.", "United States of America"]
UK = ["United Kingdom", "UK", "Britain", "Great Britain"]
COUNTRY_ALIASES = {
    "United States": US,
    "United Kingdom": UK,
    "England": ["England"] + UK,
    "Scotland": ["Scotland"] + UK,
    "West Germany": ["West Germany", "Germany"],
    "Netherlands": ["Netherlands", "Holland"],
    "Czech Republic": ["Czech Republic", "Czechia"],
    "Turkey": ["Turkey", "Turkiye", "Türkiye"],
    "South Korea": ["South Korea", "Korea", "Republic of Korea"],
    "United Arab Emirates": ["United Arab Emirates", "UAE"],
    "Russia": ["Russia", "Russian Federation"],
    "Soviet Union": ["Soviet Union", "USSR"],
}


def article(noun: str) -> str:
    """``noun`` with "a" or "an" in front."""
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


def country(name: str) -> list[str]:
    """Aliases of a country name."""
    return COUNTRY_ALIASES.get(name, [name])



# ---------------------------------------------------------------- geography
# (country as written in the question, capital aliases)
CAPITALS = [
    ("France", ["Paris"]), ("Japan", ["Tokyo"]), ("Italy", ["Rome"]), ("Germany", ["Berlin"]),
    ("Spain", ["Madrid"]), ("Russia", ["Moscow"]), ("Egypt", ["Cairo"]),
    ("the United Kingdom", ["London"]), ("Canada", ["Ottawa"]), ("Australia", ["Canberra"]),
    ("China", ["Beijing", "Peking"]), ("India", ["New Delhi"]), ("Brazil", ["Brasilia", "Brasília"]),
    ("Argentina", ["Buenos Aires"]), ("Greece", ["Athens"]), ("Portugal", ["Lisbon"]),
    ("Ireland", ["Dublin"]), ("Norway", ["Oslo"]), ("Sweden", ["Stockholm"]),
    ("Finland", ["Helsinki"]), ("Denmark", ["Copenhagen"]), ("Poland", ["Warsaw"]),
    ("Austria", ["Vienna", "Wien"]), ("Hungary", ["Budapest"]), ("the Czech Republic", ["Prague"]),
    ("Belgium", ["Brussels"]), ("the Netherlands", ["Amsterdam"]), ("Switzerland", ["Bern", "Berne"]),
    ("Turkey", ["Ankara"]), ("Iran", ["Tehran", "Teheran"]), ("Iraq", ["Baghdad"]),
    ("Saudi Arabia", ["Riyadh"]), ("Afghanistan", ["Kabul"]), ("Pakistan", ["Islamabad"]),
    ("Bangladesh", ["Dhaka"]), ("Nepal", ["Kathmandu"]), ("Thailand", ["Bangkok"]),
    ("Vietnam", ["Hanoi"]), ("the Philippines", ["Manila"]), ("South Korea", ["Seoul"]),
    ("North Korea", ["Pyongyang"]), ("Mongolia", ["Ulaanbaatar", "Ulan Bator"]),
    ("Kenya", ["Nairobi"]), ("Nigeria", ["Abuja"]), ("Ghana", ["Accra"]),
    ("Ethiopia", ["Addis Ababa"]), ("Morocco", ["Rabat"]), ("Algeria", ["Algiers"]),
    ("Tunisia", ["Tunis"]), ("Libya", ["Tripoli"]), ("Sudan", ["Khartoum"]),
    ("Uganda", ["Kampala"]), ("Zimbabwe", ["Harare"]), ("Zambia", ["Lusaka"]),
    ("Senegal", ["Dakar"]), ("Angola", ["Luanda"]), ("Mozambique", ["Maputo"]),
    ("Madagascar", ["Antananarivo"]), ("Mexico", ["Mexico City"]), ("Cuba", ["Havana"]),
    ("Jamaica", ["Kingston"]), ("Peru", ["Lima"]), ("Chile", ["Santiago"]),
    ("Colombia", ["Bogota", "Bogotá"]), ("Venezuela", ["Caracas"]), ("Ecuador", ["Quito"]),
    ("Uruguay", ["Montevideo"]), ("Paraguay", ["Asuncion", "Asunción"]),
    ("New Zealand", ["Wellington"]), ("Iceland", ["Reykjavik", "Reykjavík"]),
    ("Romania", ["Bucharest"]), ("Bulgaria", ["Sofia"]), ("Serbia", ["Belgrade"]),
    ("Croatia", ["Zagreb"]), ("Slovenia", ["Ljubljana"]), ("Slovakia", ["Bratislava"]),
    ("Ukraine", ["Kyiv", "Kiev"]), ("Belarus", ["Minsk"]), ("Lithuania", ["Vilnius"]),
    ("Latvia", ["Riga"]), ("Estonia", ["Tallinn"]), ("the country of Georgia", ["Tbilisi"]),
    ("Armenia", ["Yerevan"]), ("Azerbaijan", ["Baku"]), ("Kazakhstan", ["Astana", "Nur-Sultan"]),
    ("Uzbekistan", ["Tashkent"]), ("Kyrgyzstan", ["Bishkek"]), ("Tajikistan", ["Dushanbe"]),
    ("Turkmenistan", ["Ashgabat"]), ("Syria", ["Damascus"]), ("Lebanon", ["Beirut"]),
    ("Jordan", ["Amman"]), ("Kuwait", ["Kuwait City"]), ("Qatar", ["Doha"]),
    ("Bahrain", ["Manama"]), ("Oman", ["Muscat"]), ("Yemen", ["Sanaa", "Sana'a"]),
    ("the United Arab Emirates", ["Abu Dhabi"]), ("Cyprus", ["Nicosia"]), ("Malta", ["Valletta"]),
    ("Albania", ["Tirana", "Tirane"]), ("North Macedonia", ["Skopje"]),
    ("Montenegro", ["Podgorica"]), ("Bosnia and Herzegovina", ["Sarajevo"]),
    ("Moldova", ["Chisinau", "Chișinău"]), ("Cambodia", ["Phnom Penh"]), ("Laos", ["Vientiane"]),
    ("Myanmar", ["Naypyidaw", "Nay Pyi Taw", "Naypyitaw"]), ("Malaysia", ["Kuala Lumpur"]),
    ("Brunei", ["Bandar Seri Begawan"]), ("Bhutan", ["Thimphu"]), ("the Maldives", ["Male", "Malé"]),
    ("Rwanda", ["Kigali"]), ("Mali", ["Bamako"]), ("Niger", ["Niamey"]), ("Chad", ["N'Djamena"]),
    ("Burkina Faso", ["Ouagadougou"]), ("Mauritania", ["Nouakchott"]), ("Guinea", ["Conakry"]),
    ("Sierra Leone", ["Freetown"]), ("Liberia", ["Monrovia"]), ("Cameroon", ["Yaounde", "Yaoundé"]),
    ("Gabon", ["Libreville"]), ("the Democratic Republic of the Congo", ["Kinshasa"]),
    ("the Republic of the Congo", ["Brazzaville"]), ("the Central African Republic", ["Bangui"]),
    ("Eritrea", ["Asmara"]), ("Somalia", ["Mogadishu"]), ("South Sudan", ["Juba"]),
    ("Malawi", ["Lilongwe"]), ("Namibia", ["Windhoek"]), ("Botswana", ["Gaborone"]),
    ("Lesotho", ["Maseru"]), ("Mauritius", ["Port Louis"]), ("the Gambia", ["Banjul"]),
    ("Cape Verde", ["Praia"]), ("Guatemala", ["Guatemala City"]), ("Honduras", ["Tegucigalpa"]),
    ("El Salvador", ["San Salvador"]), ("Nicaragua", ["Managua"]), ("Costa Rica", ["San Jose", "San José"]),
    ("Panama", ["Panama City"]), ("Haiti", ["Port-au-Prince"]), ("the Dominican Republic", ["Santo Domingo"]),
    ("the Bahamas", ["Nassau"]), ("Barbados", ["Bridgetown"]), ("Trinidad and Tobago", ["Port of Spain"]),
    ("Guyana", ["Georgetown"]), ("Suriname", ["Paramaribo"]), ("Belize", ["Belmopan"]),
    ("Fiji", ["Suva"]), ("Papua New Guinea", ["Port Moresby"]), ("Samoa", ["Apia"]),
    ("Liechtenstein", ["Vaduz"]), ("Andorra", ["Andorra la Vella"]), ("East Timor", ["Dili"]),
]

US_STATE_CAPITALS = [
    ("Alabama", "Montgomery"), ("Alaska", "Juneau"), ("Arizona", "Phoenix"),
    ("Arkansas", "Little Rock"), ("California", "Sacramento"), ("Colorado", "Denver"),
    ("Connecticut", "Hartford"), ("Delaware", "Dover"), ("Florida", "Tallahassee"),
    ("Georgia", "Atlanta"), ("Hawaii", "Honolulu"), ("Idaho", "Boise"), ("Illinois", "Springfield"),
    ("Indiana", "Indianapolis"), ("Iowa", "Des Moines"), ("Kansas", "Topeka"),
    ("Kentucky", "Frankfort"), ("Louisiana", "Baton Rouge"), ("Maine", "Augusta"),
    ("Maryland", "Annapolis"), ("Massachusetts", "Boston"), ("Michigan", "Lansing"),
    ("Minnesota", "Saint Paul"), ("Mississippi", "Jackson"), ("Missouri", "Jefferson City"),
    ("Montana", "Helena"), ("Nebraska", "Lincoln"), ("Nevada", "Carson City"),
    ("New Hampshire", "Concord"), ("New Jersey", "Trenton"), ("New Mexico", "Santa Fe"),
    ("New York", "Albany"), ("North Carolina", "Raleigh"), ("North Dakota", "Bismarck"),
    ("Ohio", "Columbus"), ("Oklahoma", "Oklahoma City"), ("Oregon", "Salem"),
    ("Pennsylvania", "Harrisburg"), ("Rhode Island", "Providence"), ("South Carolina", "Columbia"),
    ("South Dakota", "Pierre"), ("Tennessee", "Nashville"), ("Texas", "Austin"),
    ("Utah", "Salt Lake City"), ("Vermont", "Montpelier"), ("Virginia", "Richmond"),
    ("Washington", "Olympia"), ("West Virginia", "Charleston"), ("Wisconsin", "Madison"),
    ("Wyoming", "Cheyenne"),
]

CONTINENTS = [
    ("Kenya", "Africa"), ("Nigeria", "Africa"), ("Ghana", "Africa"), ("Morocco", "Africa"),
    ("Ethiopia", "Africa"), ("Madagascar", "Africa"), ("Brazil", "South America"),
    ("Argentina", "South America"), ("Peru", "South America"), ("Chile", "South America"),
    ("Colombia", "South America"), ("Venezuela", "South America"), ("Uruguay", "South America"),
    ("Canada", "North America"), ("Mexico", "North America"), ("Japan", "Asia"), ("China", "Asia"),
    ("India", "Asia"), ("Thailand", "Asia"), ("Vietnam", "Asia"), ("Mongolia", "Asia"),
    ("Nepal", "Asia"), ("France", "Europe"), ("Germany", "Europe"), ("Poland", "Europe"),
    ("Italy", "Europe"), ("Norway", "Europe"), ("Portugal", "Europe"), ("Hungary", "Europe"),
    ("Spain", "Europe"), ("Sweden", "Europe"), ("Ireland", "Europe"), ("Greece", "Europe"),
    ("Austria", "Europe"), ("Belgium", "Europe"), ("Finland", "Europe"), ("Ukraine", "Europe"),
    ("Pakistan", "Asia"), ("Indonesia", "Asia"), ("the Philippines", "Asia"), ("South Korea", "Asia"),
    ("Bangladesh", "Asia"), ("Cambodia", "Asia"), ("Saudi Arabia", "Asia"), ("Iraq", "Asia"),
    ("Algeria", "Africa"), ("Senegal", "Africa"), ("Zimbabwe", "Africa"), ("Uganda", "Africa"),
    ("Tanzania", "Africa"), ("Cameroon", "Africa"), ("Angola", "Africa"), ("Mali", "Africa"),
    ("Ecuador", "South America"), ("Bolivia", "South America"), ("Paraguay", "South America"),
    ("the United States", "North America"),
]

CITY_COUNTRY = [
    ("Kyoto", "Japan"), ("Osaka", "Japan"), ("Mumbai", "India"), ("Toronto", "Canada"),
    ("Vancouver", "Canada"), ("Sydney", "Australia"), ("Melbourne", "Australia"),
    ("Rio de Janeiro", "Brazil"), ("Sao Paulo", "Brazil"), ("Istanbul", "Turkey"),
    ("Barcelona", "Spain"), ("Seville", "Spain"), ("Munich", "Germany"), ("Hamburg", "Germany"),
    ("Milan", "Italy"), ("Venice", "Italy"), ("Naples", "Italy"), ("Krakow", "Poland"),
    ("Saint Petersburg", "Russia"), ("Casablanca", "Morocco"), ("Marrakesh", "Morocco"),
    ("Lagos", "Nigeria"), ("Johannesburg", "South Africa"), ("Cape Town", "South Africa"),
    ("Shanghai", "China"), ("Auckland", "New Zealand"),
    ("Chicago", "United States"), ("Los Angeles", "United States"), ("Geneva", "Switzerland"),
    ("Zurich", "Switzerland"), ("Porto", "Portugal"), ("Marseille", "France"), ("Lyon", "France"),
    ("Edinburgh", "Scotland"), ("Manchester", "England"), ("Dubai", "United Arab Emirates"),
    ("Karachi", "Pakistan"), ("Alexandria", "Egypt"), ("Busan", "South Korea"),
    ("Ho Chi Minh City", "Vietnam"), ("Medellin", "Colombia"), ("Cusco", "Peru"),
    ("Salzburg", "Austria"), ("Gothenburg", "Sweden"), ("Bergen", "Norway"),
    ("Rotterdam", "Netherlands"), ("Antwerp", "Belgium"), ("Timbuktu", "Mali"),
    ("Havana", "Cuba"), ("Tijuana", "Mexico"), ("Montreal", "Canada"), ("Florence", "Italy"),
    ("Paris", "France"), ("London", "United Kingdom"), ("Tokyo", "Japan"), ("Berlin", "Germany"),
    ("Madrid", "Spain"), ("Rome", "Italy"), ("Moscow", "Russia"), ("Beijing", "China"),
    ("Cairo", "Egypt"), ("Athens", "Greece"), ("Lisbon", "Portugal"), ("Dublin", "Ireland"),
    ("Amsterdam", "Netherlands"), ("Vienna", "Austria"), ("Stockholm", "Sweden"), ("Oslo", "Norway"),
    ("Copenhagen", "Denmark"), ("Warsaw", "Poland"), ("Prague", "Czech Republic"),
    ("Budapest", "Hungary"), ("Brussels", "Belgium"), ("Bangkok", "Thailand"), ("Seoul", "South Korea"),
    ("New Delhi", "India"), ("Buenos Aires", "Argentina"), ("Lima", "Peru"), ("Nairobi", "Kenya"),
    ("Ottawa", "Canada"), ("Miami", "United States"), ("San Francisco", "United States"),
    ("Seattle", "United States"), ("Houston", "United States"), ("Glasgow", "Scotland"),
    ("Liverpool", "England"), ("Frankfurt", "Germany"), ("Cologne", "Germany"), ("Nice", "France"),
    ("Bordeaux", "France"), ("Turin", "Italy"), ("Bologna", "Italy"), ("Kolkata", "India"),
    ("Bangalore", "India"), ("Chennai", "India"), ("Hanoi", "Vietnam"), ("Manila", "Philippines"),
    ("Jakarta", "Indonesia"), ("Kuala Lumpur", "Malaysia"), ("Tehran", "Iran"), ("Baghdad", "Iraq"),
    ("Riyadh", "Saudi Arabia"), ("Doha", "Qatar"), ("Addis Ababa", "Ethiopia"), ("Accra", "Ghana"),
    ("Dakar", "Senegal"), ("Bogota", "Colombia"), ("Caracas", "Venezuela"), ("Quebec City", "Canada"),
    ("Calgary", "Canada"), ("Brisbane", "Australia"), ("Wellington", "New Zealand"),
    ("Reykjavik", "Iceland"), ("Helsinki", "Finland"),
]

LANDMARKS = [
    ("In which city is the Eiffel Tower?", ["Paris"]),
    ("In which country is the Taj Mahal?", ["India"]),
    ("In which Indian city is the Taj Mahal?", ["Agra"]),
    ("In which city is the Colosseum?", ["Rome"]),
    ("In which country is Machu Picchu?", ["Peru"]),
    ("In which city is the Statue of Liberty?", ["New York", "New York City", "NYC"]),
    ("In which city is Big Ben?", ["London"]),
    ("In which country is the ancient city of Petra?", ["Jordan"]),
    ("In which country is Angkor Wat?", ["Cambodia"]),
    ("In which city is the Christ the Redeemer statue?", ["Rio de Janeiro", "Rio"]),
    ("In which country is the Sydney Opera House?", ["Australia"]),
    ("In which city is the Acropolis?", ["Athens"]),
    ("In which city is the Kremlin?", ["Moscow"]),
    ("In which city is the Brandenburg Gate?", ["Berlin"]),
    ("In which city is the Sagrada Familia?", ["Barcelona"]),
    ("In which Italian city is the famous leaning tower?", ["Pisa"]),
    ("In which Spanish city is the Alhambra?", ["Granada"]),
    ("In which country is Stonehenge?", country("England")),
    ("In which country is Chichen Itza?", ["Mexico"]),
    ("In which city is the Golden Gate Bridge?", ["San Francisco"]),
    ("In which city is the Burj Khalifa?", ["Dubai"]),
    ("In which city is the Forbidden City?", ["Beijing", "Peking"]),
    ("In which city is the Louvre museum?", ["Paris"]),
    ("In which city is Hagia Sophia?", ["Istanbul", "Constantinople"]),
    ("In which country are the Pyramids of Giza?", ["Egypt"]),
    ("In which country is the Great Wall?", ["China"]),
    ("In which city is Times Square?", ["New York", "New York City", "NYC"]),
    ("In which US state is Mount Rushmore?", ["South Dakota"]),
    ("In which US state is the Grand Canyon?", ["Arizona"]),
    ("In which city is Buckingham Palace?", ["London"]),
    ("In which city is the Arc de Triomphe?", ["Paris"]),
    ("In which city is Notre-Dame Cathedral?", ["Paris"]),
    ("In which city is the Empire State Building?", ["New York", "New York City", "NYC"]),
    ("In which city is the White House?", ["Washington", "Washington, D.C.", "Washington DC"]),
    ("In which city is the Trevi Fountain?", ["Rome"]),
    ("In which city is Red Square?", ["Moscow"]),
    ("In which city is the Parthenon?", ["Athens"]),
    ("In which city are the Petronas Towers?", ["Kuala Lumpur"]),
    ("In which city is the CN Tower?", ["Toronto"]),
    ("In which city is the Space Needle?", ["Seattle"]),
    ("In which country is Mount Fuji?", ["Japan"]),
    ("In which country is Mount Kilimanjaro?", ["Tanzania"]),
    ("In which country is the Blue Mosque?", country("Turkey")),
    ("In which country is most of the Amazon rainforest?", ["Brazil"]),
    ("In which country are the ruins of Pompeii?", ["Italy"]),
    ("In which city is Hollywood?", ["Los Angeles", "LA", "L.A."]),
    ("In which city is the Hermitage Museum?", ["Saint Petersburg", "St. Petersburg", "St Petersburg"]),
]

RIVER_CITIES = [
    ("London", "Thames"), ("Paris", "Seine"), ("Cairo", "Nile"), ("Vienna", "Danube"),
    ("Budapest", "Danube"), ("Rome", "Tiber"), ("Baghdad", "Tigris"), ("Prague", "Vltava"),
    ("Florence", "Arno"), ("Lisbon", "Tagus"), ("Dublin", "Liffey"), ("New Orleans", "Mississippi"),
    ("Berlin", "Spree"), ("Varanasi", "Ganges"),
]

LARGEST_CITIES = [
    ("Canada", ["Toronto"]), ("the United States", ["New York", "New York City", "NYC"]),
    ("Turkey", ["Istanbul"]), ("Brazil", ["Sao Paulo", "São Paulo"]), ("Germany", ["Berlin"]),
    ("Switzerland", ["Zurich", "Zürich"]), ("Italy", ["Rome"]), ("Spain", ["Madrid"]),
    ("Russia", ["Moscow"]), ("Nigeria", ["Lagos"]), ("South Africa", ["Johannesburg"]),
    ("New Zealand", ["Auckland"]), ("Morocco", ["Casablanca"]), ("Pakistan", ["Karachi"]),
    ("Vietnam", ["Ho Chi Minh City", "Saigon"]), ("Egypt", ["Cairo"]), ("Scotland", ["Glasgow"]),
    ("Kazakhstan", ["Almaty"]), ("Japan", ["Tokyo"]), ("France", ["Paris"]),
    ("the United Kingdom", ["London"]), ("Argentina", ["Buenos Aires"]), ("Mexico", ["Mexico City"]),
    ("Israel", ["Jerusalem"]), ("the Netherlands", ["Amsterdam"]),
]

RIVER_EXTRA = {"Tagus": ["Tejo"], "Ganges": ["Ganga"], "Vltava": ["Moldau"]}

CURRENCIES = [
    ("Japan", ["yen"]), ("the United Kingdom", ["pound", "pound sterling", "sterling", "pounds"]),
    ("the United States", ["dollar", "US dollar", "dollars"]), ("India", ["rupee", "Indian rupee", "rupees"]),
    ("China", ["yuan", "renminbi", "RMB"]), ("Russia", ["ruble", "rouble", "rubles", "roubles"]),
    ("Mexico", ["peso", "Mexican peso", "pesos"]), ("Switzerland", ["franc", "Swiss franc", "francs"]),
    ("Brazil", ["real", "Brazilian real", "reais"]), ("South Africa", ["rand"]),
    ("South Korea", ["won"]), ("Sweden", ["krona", "Swedish krona", "kronor"]),
    ("Poland", ["zloty", "złoty"]), ("Turkey", ["lira", "Turkish lira"]),
    ("Israel", ["shekel", "new shekel", "shekels"]), ("Thailand", ["baht"]),
    ("Vietnam", ["dong"]), ("Germany", ["euro", "euros"]), ("Italy", ["euro", "euros"]),
    ("Hungary", ["forint"]), ("Norway", ["krone", "Norwegian krone", "kroner"]),
    ("Denmark", ["krone", "Danish krone", "kroner"]), ("Indonesia", ["rupiah"]),
    ("Saudi Arabia", ["riyal", "Saudi riyal"]), ("Nigeria", ["naira"]),
    ("Canada", ["dollar", "Canadian dollar", "dollars"]),
    ("Australia", ["dollar", "Australian dollar", "dollars"]),
    ("New Zealand", ["dollar", "New Zealand dollar", "dollars"]), ("Egypt", ["pound", "Egyptian pound"]),
    ("Argentina", ["peso", "Argentine peso", "pesos"]), ("Chile", ["peso", "Chilean peso", "pesos"]),
    ("Colombia", ["peso", "Colombian peso", "pesos"]), ("the Philippines", ["peso", "Philippine peso"]),
    ("Pakistan", ["rupee", "Pakistani rupee", "rupees"]),
    ("Sri Lanka", ["rupee", "Sri Lankan rupee", "rupees"]), ("Iran", ["rial", "Iranian rial"]),
    ("Malaysia", ["ringgit"]), ("Kenya", ["shilling", "Kenyan shilling"]),
    ("Ukraine", ["hryvnia", "hryvnya"]), ("the Czech Republic", ["koruna", "Czech koruna", "crown"]),
    ("Romania", ["leu", "Romanian leu", "lei"]), ("Iceland", ["krona", "Icelandic krona", "króna"]),
    ("Morocco", ["dirham", "Moroccan dirham"]), ("the United Arab Emirates", ["dirham", "UAE dirham"]),
    ("France", ["euro", "euros"]), ("Spain", ["euro", "euros"]), ("Greece", ["euro", "euros"]),
    ("Ireland", ["euro", "euros"]), ("the Netherlands", ["euro", "euros"]), ("Portugal", ["euro", "euros"]),
    ("Austria", ["euro", "euros"]), ("Finland", ["euro", "euros"]), ("Belgium", ["euro", "euros"]),
]

GEO_FACTS = [
    ("What is the largest ocean on Earth?", ["Pacific", "Pacific Ocean"]),
    ("What is the longest river in Africa?", ["Nile", "River Nile", "Nile River"]),
    ("What is the longest river in South America?", ["Amazon", "Amazon River"]),
    ("What is the longest river in Europe?", ["Volga", "Volga River"]),
    ("What is the tallest mountain in the world?", ["Mount Everest", "Everest", "Mt. Everest"]),
    ("What is the highest mountain in Africa?", ["Kilimanjaro", "Mount Kilimanjaro"]),
    ("What is the highest mountain in North America?", ["Denali", "Mount McKinley"]),
    ("What is the highest mountain in South America?", ["Aconcagua"]),
    ("What is the highest mountain in the Alps?", ["Mont Blanc", "Monte Bianco"]),
    ("What is the highest mountain in Japan?", ["Mount Fuji", "Fuji", "Fujisan", "Fuji-san"]),
    ("What is the largest hot desert in the world?", ["Sahara", "Sahara Desert"]),
    ("Which country is the largest in the world by area?", country("Russia")),
    ("What is the smallest country in the world by area?", ["Vatican City", "Vatican", "Holy See"]),
    ("What is the largest continent by area?", ["Asia"]),
    ("What is the largest island in the world?", ["Greenland"]),
    ("What is the deepest ocean trench on Earth?", ["Mariana Trench", "Marianas Trench"]),
    ("What is the largest lake in Africa?", ["Lake Victoria", "Victoria"]),
    ("Which is the largest of the North American Great Lakes?", ["Lake Superior", "Superior"]),
    ("What is the deepest lake in the world?", ["Lake Baikal", "Baikal"]),
    ("Which ocean lies between Africa and Australia?", ["Indian Ocean", "Indian"]),
    ("Which sea lies between Europe and Africa?", ["Mediterranean", "Mediterranean Sea"]),
    ("Which strait separates Spain from Morocco?", ["Strait of Gibraltar", "Gibraltar"]),
    ("Which canal connects the Mediterranean Sea to the Red Sea?", ["Suez Canal", "Suez"]),
    ("Which canal connects the Atlantic and Pacific oceans through Central America?",
     ["Panama Canal", "Panama"]),
    ("What is the largest country in South America by area?", ["Brazil"]),
    ("What is the largest country in Africa by area?", ["Algeria"]),
    ("What mountain range separates Europe from Asia in Russia?", ["Ural Mountains", "Urals", "Ural"]),
    ("What mountain range contains Mount Everest?", ["Himalayas", "Himalaya"]),
    ("What is the longest mountain range in the world above sea level?", ["Andes", "Andes Mountains"]),
    ("Which US state is made up entirely of islands in the Pacific Ocean?", ["Hawaii"]),
    ("What is the largest US state by area?", ["Alaska"]),
    ("What is the smallest US state by area?", ["Rhode Island"]),
    ("Which country is shaped like a boot?", ["Italy"]),
    ("Which line of latitude divides the Earth into the Northern and Southern hemispheres?",
     ["Equator", "the equator"]),
    ("Which African country was formerly called Abyssinia?", ["Ethiopia"]),
    ("Which Asian country was formerly called Siam?", ["Thailand"]),
    ("Which country was formerly called Persia?", ["Iran"]),
    ("Which country was formerly called Ceylon?", ["Sri Lanka"]),
    ("Which country was formerly called Burma?", ["Myanmar"]),
    ("Which city was formerly called New Amsterdam?", ["New York", "New York City", "NYC"]),
    ("Which Russian city was formerly called Leningrad?", ["Saint Petersburg", "St. Petersburg", "St Petersburg"]),
    ("Which country is home to the Great Barrier Reef?", ["Australia"]),
    ("On which continent is the Sahara Desert?", ["Africa"]),
    ("Which desert covers much of northern Chile and is one of the driest places on Earth?",
     ["Atacama", "Atacama Desert"]),
    ("What is the coldest continent on Earth?", ["Antarctica"]),
    ("Which two countries share the longest international border in the world?",
     ["Canada and the United States", "United States and Canada", "Canada and the US", "US and Canada",
      "Canada and USA", "USA and Canada"]),
    ("Which waterfall lies on the border between Canada and the US state of New York?",
     ["Niagara Falls", "Niagara"]),
]


def geography() -> list[tuple[str, list[str]]]:
    """Capitals, US state capitals, continents, cities, landmarks, rivers, currencies, facts."""
    qs = [(f"What is the capital of {c}?", a) for c, a in CAPITALS]
    qs += [(f"What is the capital of the US state of {s}?", [c] + (["St. Paul", "St Paul"]
            if c == "Saint Paul" else [])) for s, c in US_STATE_CAPITALS]
    qs += [(f"On which continent is {c}?", [k]) for c, k in CONTINENTS]
    qs += [(f"In which country is the city of {city}?", country(c)) for city, c in CITY_COUNTRY]
    qs += LANDMARKS
    qs += [(f"Which river flows through {city}?", [r, f"{r} River", f"River {r}"]
            + RIVER_EXTRA.get(r, [])) for city, r in RIVER_CITIES]
    qs += [(f"What is the currency of {c}?", a) for c, a in CURRENCIES]
    qs += [(f"What is the largest city in {c} by population?", a) for c, a in LARGEST_CITIES]
    return qs + GEO_FACTS


# ---------------------------------------------------------------- history
EVENT_YEARS = [
    ("did World War II end", 1945), ("did World War II begin", 1939),
    ("did World War I begin", 1914), ("did World War I end", 1918),
    ("did Apollo 11 land on the Moon", 1969), ("did the Berlin Wall fall", 1989),
    ("was the United States Declaration of Independence signed", 1776),
    ("did the French Revolution begin", 1789),
    ("did Christopher Columbus first reach the Americas", 1492), ("did the Titanic sink", 1912),
    ("was the Battle of Hastings fought", 1066), ("was Magna Carta sealed", 1215),
    ("was the Soviet Union dissolved", 1991),
    ("did the September 11 attacks on the World Trade Center take place", 2001),
    ("did the Russian Revolution take place", 1917), ("did the American Civil War begin", 1861),
    ("did the American Civil War end", 1865), ("was President John F. Kennedy assassinated", 1963),
    ("was the Battle of Waterloo fought", 1815), ("did Constantinople fall to the Ottomans", 1453),
    ("did Martin Luther publish his Ninety-five Theses", 1517),
    ("did the Wall Street Crash happen", 1929), ("did Japan attack Pearl Harbor", 1941),
    ("did the D-Day landings in Normandy take place", 1944),
    ("did India gain independence from Britain", 1947), ("did the Chernobyl disaster happen", 1986),
    ("did the Wright brothers make their first powered flight", 1903),
    ("did Queen Victoria die", 1901), ("was Queen Elizabeth II crowned", 1953),
    ("did Queen Elizabeth II die", 2022), ("was Sputnik 1 launched", 1957),
    ("did Yuri Gagarin become the first human in space", 1961),
    ("did the Great Fire of London happen", 1666), ("did the Spanish Armada sail against England", 1588),
    ("did Napoleon Bonaparte die", 1821), ("did the Korean War begin", 1950),
    ("did Saigon fall, ending the Vietnam War", 1975), ("did East and West Germany reunify", 1990),
    ("did the United Kingdom vote to leave the European Union in a referendum", 2016),
    ("was Barack Obama first elected President of the United States", 2008),
    ("did the Cuban Missile Crisis take place", 1962), ("was Abraham Lincoln assassinated", 1865),
    ("was the Treaty of Versailles signed", 1919), ("was Nelson Mandela released from prison", 1990),
    ("did Nelson Mandela become President of South Africa", 1994),
    ("were euro banknotes and coins first introduced", 2002),
    ("was Charlemagne crowned Emperor by the Pope", 800),
    ("did the Pilgrims sail to America on the Mayflower", 1620),
    ("did the atomic bomb fall on Hiroshima", 1945),
]

US_PRESIDENTS = [
    ("first", ["George Washington", "Washington"]), ("second", ["John Adams"]),
    ("third", ["Thomas Jefferson", "Jefferson"]), ("fourth", ["James Madison", "Madison"]),
    ("fifth", ["James Monroe", "Monroe"]), ("sixth", ["John Quincy Adams"]),
    ("seventh", ["Andrew Jackson"]), ("16th", ["Abraham Lincoln", "Lincoln"]),
    ("26th", ["Theodore Roosevelt", "Teddy Roosevelt"]),
    ("32nd", ["Franklin D. Roosevelt", "Franklin Delano Roosevelt", "Franklin Roosevelt", "FDR"]),
    ("33rd", ["Harry S. Truman", "Harry Truman", "Truman"]),
    ("34th", ["Dwight D. Eisenhower", "Dwight Eisenhower", "Eisenhower"]),
    ("35th", ["John F. Kennedy", "John Kennedy", "JFK", "John Fitzgerald Kennedy"]),
    ("36th", ["Lyndon B. Johnson", "Lyndon Johnson", "LBJ"]),
    ("37th", ["Richard Nixon", "Nixon"]), ("38th", ["Gerald Ford", "Gerald R. Ford"]),
    ("39th", ["Jimmy Carter", "James Earl Carter"]), ("40th", ["Ronald Reagan", "Reagan"]),
    ("41st", ["George H. W. Bush", "George H.W. Bush", "George Herbert Walker Bush"]),
    ("42nd", ["Bill Clinton", "William Jefferson Clinton"]),
    ("43rd", ["George W. Bush", "George Walker Bush"]), ("44th", ["Barack Obama", "Obama"]),
    ("46th", ["Joe Biden", "Biden"]),
]

HISTORY_FACTS = [
    ("Who was the first emperor of Rome?", ["Augustus", "Octavian", "Caesar Augustus"]),
    ("Who was the first emperor of a unified China?", ["Qin Shi Huang", "Qin Shi Huangdi", "Shi Huangdi",
                                                         "Ying Zheng"]),
    ("Who was the British prime minister for most of World War II?", ["Winston Churchill", "Churchill"]),
    ("Who was the first female prime minister of the United Kingdom?", ["Margaret Thatcher", "Thatcher"]),
    ("Who led the Soviet Union during World War II?", ["Joseph Stalin", "Stalin"]),
    ("Who was the leader of Nazi Germany?", ["Adolf Hitler", "Hitler"]),
    ("Who was the first human to travel into space?", ["Yuri Gagarin", "Gagarin"]),
    ("Who was the first woman to travel into space?", ["Valentina Tereshkova", "Tereshkova"]),
    ("Which passenger liner sank in 1912 after hitting an iceberg?", ["Titanic", "RMS Titanic"]),
    ("Which South American civilization built Machu Picchu?", ["Inca", "Incas", "Inca Empire", "Inka"]),
    ("Who was the last active ruler of Ptolemaic Egypt, famous for her alliance with Mark Antony?",
     ["Cleopatra", "Cleopatra VII"]),
    ("Who was the first black president of South Africa?", ["Nelson Mandela", "Mandela"]),
    ("Which French emperor was defeated at the Battle of Waterloo?",
     ["Napoleon", "Napoleon Bonaparte", "Napoleon I"]),
    ("Who founded the Mongol Empire?", ["Genghis Khan", "Chinggis Khan", "Temujin"]),
    ("Which Macedonian king conquered the Persian Empire in the 4th century BC?",
     ["Alexander the Great", "Alexander III", "Alexander"]),
    ("In which city was John F. Kennedy assassinated?", ["Dallas"]),
    ("Which country gave the Statue of Liberty to the United States?", ["France"]),
    ("Who was the English queen at the time of the Spanish Armada?", ["Elizabeth I", "Queen Elizabeth I",
                                                                     "Elizabeth the First"]),
    ("Which ancient Roman city was buried by the eruption of Mount Vesuvius in AD 79?",
     ["Pompeii", "Herculaneum"]),
    ("Who led India's non-violent independence movement against British rule?",
     ["Mahatma Gandhi", "Gandhi", "Mohandas Gandhi", "Mohandas Karamchand Gandhi"]),
    ("Who delivered the 'I Have a Dream' speech in 1963?",
     ["Martin Luther King Jr.", "Martin Luther King", "MLK"]),
    ("Which Portuguese explorer was the first European to reach India by sea?", ["Vasco da Gama"]),
    ("Who led the first expedition to reach the South Pole?", ["Roald Amundsen", "Amundsen"]),
    ("Who were the first climbers confirmed to reach the summit of Mount Everest, in 1953?",
     ["Edmund Hillary", "Tenzing Norgay", "Hillary", "Tenzing"]),
    ("Who was President of the United States during the American Civil War?", ["Abraham Lincoln", "Lincoln"]),
    ("What was the capital of the Byzantine Empire?", ["Constantinople", "Byzantium", "Istanbul"]),
    ("Which country was ruled by tsars until 1917?", ["Russia", "Russian Empire"]),
    ("Who was the first Chancellor of the German Empire?", ["Otto von Bismarck", "Bismarck"]),
    ("In which country did the Renaissance begin?", ["Italy"]),
    ("In which country did the Industrial Revolution begin?", ["Britain", "Great Britain", "England",
                                                               "United Kingdom", "UK"]),
    ("What was the capital city of the Aztec Empire?", ["Tenochtitlan", "Tenochtitlán"]),
    ("Which Egyptian pharaoh's nearly intact tomb was discovered by Howard Carter in 1922?",
     ["Tutankhamun", "Tutankhamen", "King Tut", "Tut"]),
    ("Which French queen was executed by guillotine in 1793?", ["Marie Antoinette"]),
    ("Which country was the main rival of the United States during the Cold War?",
     ["Soviet Union", "USSR", "Russia"]),
    ("What was the name of the ship that carried the Pilgrims to America in 1620?", ["Mayflower"]),
    ("Which US president issued the Emancipation Proclamation?", ["Abraham Lincoln", "Lincoln"]),
    ("Who was President of the United States when Japan attacked Pearl Harbor?",
     ["Franklin D. Roosevelt", "Franklin Delano Roosevelt", "Franklin Roosevelt", "FDR"]),
    ("Who was the Soviet leader during the Cuban Missile Crisis?", ["Nikita Khrushchev", "Khrushchev"]),
    ("Which British monarch reigned from 1837 to 1901?", ["Queen Victoria", "Victoria"]),
    ("What was the name of the first artificial Earth satellite?", ["Sputnik", "Sputnik 1"]),
    ("Who was the second person to walk on the Moon?", ["Buzz Aldrin", "Aldrin", "Edwin Aldrin"]),
    ("Which Italian explorer's first name was used to name the Americas?", ["Amerigo Vespucci", "Vespucci",
                                                                          "Amerigo"]),
    ("Which empire was ruled by Suleiman the Magnificent?", ["Ottoman Empire", "Ottoman", "Ottomans"]),
    ("Which Mesoamerican civilization built the city of Chichen Itza?", ["Maya", "Mayans", "Mayan"]),
    ("Who was the first President of the United States to resign from office?",
     ["Richard Nixon", "Nixon"]),
    ("Which wall was built by the Romans across northern England in the 2nd century?",
     ["Hadrian's Wall", "Hadrians Wall", "Hadrian's"]),
    ("Who was the Roman general and dictator assassinated on the Ides of March in 44 BC?",
     ["Julius Caesar", "Caesar", "Gaius Julius Caesar"]),
    ("Which civilization built the pyramids of Giza?", ["ancient Egyptians", "Egyptians", "Egyptian",
                                                         "Egypt"]),
    ("Who was the Prime Minister of India when it became independent in 1947?",
     ["Jawaharlal Nehru", "Nehru"]),
    ("Who is generally regarded as the first Prime Minister of Great Britain?",
     ["Robert Walpole", "Sir Robert Walpole", "Walpole"]),
    ("Who was the Chinese Communist leader who proclaimed the People's Republic of China in 1949?",
     ["Mao Zedong", "Mao Tse-tung", "Mao", "Chairman Mao"]),
    ("Which Carthaginian general crossed the Alps with elephants to attack Rome?", ["Hannibal",
                                                                                  "Hannibal Barca"]),
    ("Who was the last Tsar of Russia?", ["Nicholas II", "Tsar Nicholas II", "Nicholas"]),
    ("Which English king had six wives?", ["Henry VIII", "King Henry VIII", "Henry the Eighth"]),
    ("Which French heroine led troops at the siege of Orleans and was burned at the stake in 1431?",
     ["Joan of Arc", "Jeanne d'Arc"]),
    ("What name is given to the period of European history between roughly AD 500 and 1500?",
     ["Middle Ages", "medieval period", "Medieval", "the Middle Ages"]),
    ("Which pandemic killed a large share of Europe's population in the 1340s?",
     ["Black Death", "bubonic plague", "the plague", "plague"]),
    ("Which ancient Greek city-state was famous for its military society and fought Athens in the "
     "Peloponnesian War?", ["Sparta"]),
    ("Which US president was in office during the Louisiana Purchase of 1803?",
     ["Thomas Jefferson", "Jefferson"]),
    ("Which country did the United States purchase Alaska from in 1867?", ["Russia", "Russian Empire"]),
]

def history() -> list[tuple[str, list[str]]]:
    """Event years, US presidents by number, and people and places of history."""
    qs = [(f"In which year {event}?", num(year)) for event, year in EVENT_YEARS]
    qs += [(f"Who was the {nth} President of the United States?", names)
           for nth, names in US_PRESIDENTS]
    return qs + HISTORY_FACTS


# ---------------------------------------------------------------- sport
WORLD_CUPS = [  # (year, winner, host)
    (1930, "Uruguay", "Uruguay"), (1934, "Italy", "Italy"), (1938, "Italy", "France"),
    (1950, "Uruguay", "Brazil"), (1954, "West Germany", "Switzerland"), (1958, "Brazil", "Sweden"),
    (1962, "Brazil", "Chile"), (1966, "England", "England"), (1970, "Brazil", "Mexico"),
    (1974, "West Germany", "West Germany"), (1978, "Argentina", "Argentina"),
    (1982, "Italy", "Spain"), (1986, "Argentina", "Mexico"), (1990, "West Germany", "Italy"),
    (1994, "Brazil", "United States"), (1998, "France", "France"), (2002, "Brazil", None),
    (2006, "Italy", "Germany"), (2010, "Spain", "South Africa"), (2014, "Germany", "Brazil"),
    (2018, "France", "Russia"), (2022, "Argentina", "Qatar"),
]

SUMMER_OLYMPICS = [
    (1896, ["Athens"]), (1900, ["Paris"]), (1904, ["St. Louis", "Saint Louis", "St Louis"]),
    (1908, ["London"]), (1912, ["Stockholm"]), (1920, ["Antwerp"]), (1924, ["Paris"]),
    (1928, ["Amsterdam"]), (1932, ["Los Angeles"]), (1936, ["Berlin"]), (1948, ["London"]),
    (1952, ["Helsinki"]), (1956, ["Melbourne"]), (1960, ["Rome"]), (1964, ["Tokyo"]),
    (1968, ["Mexico City"]), (1972, ["Munich"]), (1976, ["Montreal"]), (1980, ["Moscow"]),
    (1984, ["Los Angeles"]), (1988, ["Seoul"]), (1992, ["Barcelona"]), (1996, ["Atlanta"]),
    (2000, ["Sydney"]), (2004, ["Athens"]), (2008, ["Beijing"]), (2012, ["London"]),
    (2016, ["Rio de Janeiro", "Rio"]), (2020, ["Tokyo"]), (2024, ["Paris"]),
]

WINTER_OLYMPICS = [
    (1924, ["Chamonix"]), (1928, ["St. Moritz", "Saint Moritz", "St Moritz"]),
    (1932, ["Lake Placid"]), (1936, ["Garmisch-Partenkirchen"]),
    (1948, ["St. Moritz", "Saint Moritz", "St Moritz"]), (1952, ["Oslo"]),
    (1956, ["Cortina d'Ampezzo", "Cortina"]), (1960, ["Squaw Valley", "Palisades Tahoe"]),
    (1964, ["Innsbruck"]), (1968, ["Grenoble"]), (1972, ["Sapporo"]), (1976, ["Innsbruck"]),
    (1980, ["Lake Placid"]), (1984, ["Sarajevo"]), (1988, ["Calgary"]), (1992, ["Albertville"]),
    (1994, ["Lillehammer"]), (1998, ["Nagano"]), (2002, ["Salt Lake City"]),
    (2006, ["Turin", "Torino"]), (2010, ["Vancouver"]), (2014, ["Sochi"]),
    (2018, ["Pyeongchang", "PyeongChang"]), (2022, ["Beijing"]),
]

TEAM_SIZES = [
    ("association football (soccer)", 11), ("basketball", 5), ("indoor volleyball", 6),
    ("ice hockey", 6), ("baseball", 9), ("rugby union", 15), ("rugby league", 13),
    ("cricket", 11), ("water polo", 7), ("handball", 7), ("netball", 7),
    ("American football", 11), ("field hockey", 11), ("Australian rules football", 18),
    ("Gaelic football", 15), ("polo", 4), ("beach volleyball", 2),
]

FOOTBALL = ["football", "soccer", "association football"]
ATHLETES = [
    ("Roger Federer", ["tennis"]), ("Serena Williams", ["tennis"]), ("Rafael Nadal", ["tennis"]),
    ("Novak Djokovic", ["tennis"]), ("Martina Navratilova", ["tennis"]),
    ("Michael Jordan", ["basketball"]), ("LeBron James", ["basketball"]),
    ("Kobe Bryant", ["basketball"]), ("Lionel Messi", FOOTBALL), ("Cristiano Ronaldo", FOOTBALL),
    ("Pele", FOOTBALL), ("Diego Maradona", FOOTBALL), ("Zinedine Zidane", FOOTBALL),
    ("Usain Bolt", ["athletics", "sprinting", "sprint", "running", "track and field", "track"]),
    ("Michael Phelps", ["swimming"]), ("Tiger Woods", ["golf"]), ("Jack Nicklaus", ["golf"]),
    ("Wayne Gretzky", ["ice hockey", "hockey"]), ("Muhammad Ali", ["boxing"]),
    ("Mike Tyson", ["boxing"]), ("Babe Ruth", ["baseball"]),
    ("Tom Brady", ["American football", "football"]), ("Sachin Tendulkar", ["cricket"]),
    ("Don Bradman", ["cricket"]), ("Simone Biles", ["gymnastics"]), ("Nadia Comaneci", ["gymnastics"]),
    ("Lewis Hamilton", ["Formula One", "Formula 1", "F1", "motor racing", "racing", "motorsport"]),
    ("Michael Schumacher", ["Formula One", "Formula 1", "F1", "motor racing", "racing", "motorsport"]),
    ("Ayrton Senna", ["Formula One", "Formula 1", "F1", "motor racing", "racing", "motorsport"]),
    ("Tony Hawk", ["skateboarding"]), ("Shaun White", ["snowboarding"]),
    ("Magnus Carlsen", ["chess"]), ("Garry Kasparov", ["chess"]), ("Eddy Merckx", ["cycling"]),
]

TROPHIES = [
    ("the Stanley Cup", ["ice hockey", "hockey"]), ("the Super Bowl", ["American football", "football"]),
    ("the Wimbledon Championships", ["tennis"]), ("the Ashes", ["cricket"]),
    ("the Tour de France", ["cycling", "road cycling"]), ("the Ryder Cup", ["golf"]),
    ("the Davis Cup", ["tennis"]), ("the America's Cup", ["sailing", "yachting", "yacht racing"]),
    ("the FIFA World Cup", FOOTBALL), ("the NBA Finals", ["basketball"]),
    ("the World Series", ["baseball"]), ("the Masters Tournament at Augusta", ["golf"]),
]

SPORT_FACTS = [
    ("How many holes are played in a standard round of golf?", num(18)),
    ("How many points is a touchdown worth in American football?", num(6)),
    ("What is the maximum break in snooker?", ["147"]),
    ("How many rings are on the Olympic flag?", num(5)),
    ("What is a perfect score in ten-pin bowling?", ["300"]),
    ("How long is a cricket pitch in yards?", num(22)),
    ("How high is a standard basketball hoop in feet?", num(10)),
    ("What is the term for three consecutive strikes in ten-pin bowling?", ["turkey"]),
    ("What word is used for a score of zero in tennis?", ["love"]),
    ("In which country did the sport of judo originate?", ["Japan"]),
    ("Which sport uses a shuttlecock?", ["badminton"]),
    ("In which game is a king put in checkmate?", ["chess"]),
    ("In which sport can a player score a hole in one?", ["golf"]),
    ("In which sport would you perform a slam dunk?", ["basketball"]),
    ("In which sport does a batter hit a home run?", ["baseball"]),
    ("What is the name of the international governing body of association football?", ["FIFA"]),
    ("Which country has won the most FIFA World Cup titles?", ["Brazil"]),
    ("In which city is the Wimbledon tennis tournament held?", ["London"]),
    ("In which country did the ancient Olympic Games originate?", ["Greece"]),
    ("How many years apart are the Summer Olympic Games normally held?", num(4)),
    ("With which NBA team did Michael Jordan win six championships?", ["Chicago Bulls", "Bulls"]),
    ("Which football club plays its home games at Old Trafford?", ["Manchester United", "Man United"]),
    ("Which football club plays its home games at Camp Nou?", ["FC Barcelona", "Barcelona", "Barca"]),
    ("Which football club plays its home games at the Santiago Bernabeu stadium?", ["Real Madrid"]),
    ("Which football club plays its home games at Anfield?", ["Liverpool", "Liverpool FC"]),
    ("Which martial art's name means 'empty hand' in Japanese?", ["karate"]),
    ("How long is a marathon in kilometres (to the nearest kilometre)?", num(42) + ["42.195"]),
    ("How long is a marathon in miles (to the nearest mile)?", num(26) + ["26.2"]),
    ("In which sport do players use a puck?", ["ice hockey", "hockey"]),
    ("What colour jersey is worn by the leader of the Tour de France?", ["yellow"]),
    ("In tennis, what is the score called when both players have 40?", ["deuce"]),
    ("In which sport is the term 'love' used for a score of zero?", ["tennis"]),
    ("How many pieces does each player have at the start of a game of chess?", num(16)),
    ("Which country hosted the first FIFA World Cup in 1930?", ["Uruguay"]),
    ("What is the national sport of Japan, in which wrestlers try to push each other out of a ring?",
     ["sumo", "sumo wrestling"]),
    ("Which boxer was known as 'The Greatest'?", ["Muhammad Ali", "Ali", "Cassius Clay"]),
    ("Which sprinter holds the 100 metres world record of 9.58 seconds?", ["Usain Bolt", "Bolt"]),
    ("Which swimmer has won the most Olympic gold medals?", ["Michael Phelps", "Phelps"]),
    ("In which sport is the Heisman Trophy awarded?", ["American football", "college football",
                                                       "football"]),
    ("How many minutes long is a standard professional football (soccer) match, excluding stoppage time?",
     num(90)),
    ("How many periods are there in a standard ice hockey game?", num(3)),
    ("How many innings are there in a standard professional baseball game?", num(9)),
    ("In which sport do you use a foil, an epee or a sabre?", ["fencing"]),
    ("In which sport do competitors ride waves on a board?", ["surfing"]),
]


def sport() -> list[tuple[str, list[str]]]:
    """World Cups, Olympic hosts, team sizes, athletes, trophies and rules."""
    qs = [(f"Which country won the {y} FIFA World Cup?", country(w)) for y, w, _ in WORLD_CUPS]
    qs += [(f"Which country hosted the {y} FIFA World Cup?", country(h))
           for y, _, h in WORLD_CUPS if h and y != 1930]
    qs += [(f"Which city hosted the {y} Summer Olympics?", c) for y, c in SUMMER_OLYMPICS]
    qs += [(f"Which city hosted the {y} Winter Olympics?", c) for y, c in WINTER_OLYMPICS]
    qs += [(f"How many players from each team are in play at one time in {team}?", num(n))
           for team, n in TEAM_SIZES]
    qs += [(f"Which sport is {name} famous for?", s) for name, s in ATHLETES]
    qs += [(f"In which sport is {trophy} contested?", s) for trophy, s in TROPHIES]
    return qs + SPORT_FACTS


# ---------------------------------------------------------------- literature
SHAKESPEARE = ["William Shakespeare", "Shakespeare"]
AUSTEN = ["Jane Austen", "Austen"]
DICKENS = ["Charles Dickens", "Dickens"]
ORWELL = ["George Orwell", "Orwell", "Eric Blair", "Eric Arthur Blair"]
TOLSTOY = ["Leo Tolstoy", "Tolstoy", "Lev Tolstoy"]
DOSTOEVSKY = ["Fyodor Dostoevsky", "Dostoevsky", "Dostoyevsky", "Fyodor Dostoyevsky"]
TWAIN = ["Mark Twain", "Twain", "Samuel Clemens", "Samuel Langhorne Clemens"]
HEMINGWAY = ["Ernest Hemingway", "Hemingway"]
STEINBECK = ["John Steinbeck", "Steinbeck"]
TOLKIEN = ["J. R. R. Tolkien", "J.R.R. Tolkien", "Tolkien", "John Ronald Reuel Tolkien"]
HUGO = ["Victor Hugo", "Hugo"]
DUMAS = ["Alexandre Dumas", "Dumas"]
VERNE = ["Jules Verne", "Verne"]
WELLS = ["H. G. Wells", "H.G. Wells", "Wells", "Herbert George Wells"]
WILDE = ["Oscar Wilde", "Wilde"]
KAFKA = ["Franz Kafka", "Kafka"]
MARQUEZ = ["Gabriel Garcia Marquez", "Gabriel García Márquez", "Garcia Marquez", "García Márquez"]
STEVENSON = ["Robert Louis Stevenson", "R. L. Stevenson", "Stevenson"]
ASIMOV = ["Isaac Asimov", "Asimov"]
KING = ["Stephen King"]
HOMER = ["Homer"]
ROWLING = ["J. K. Rowling", "J.K. Rowling", "Rowling", "Joanne Rowling"]
DAHL = ["Roald Dahl", "Dahl"]
MILLER = ["Arthur Miller"]
CHEKHOV = ["Anton Chekhov", "Chekhov"]

BOOKS = [  # (kind, title, author aliases)
    ("play", "Romeo and Juliet", SHAKESPEARE), ("play", "Hamlet", SHAKESPEARE),
    ("play", "Macbeth", SHAKESPEARE), ("play", "A Midsummer Night's Dream", SHAKESPEARE),
    ("novel", "Pride and Prejudice", AUSTEN), ("novel", "Sense and Sensibility", AUSTEN),
    ("novel", "Nineteen Eighty-Four", ORWELL), ("novella", "Animal Farm", ORWELL),
    ("novel", "Moby-Dick", ["Herman Melville", "Melville"]), ("novel", "War and Peace", TOLSTOY),
    ("novel", "Anna Karenina", TOLSTOY), ("novel", "Crime and Punishment", DOSTOEVSKY),
    ("novel", "The Brothers Karamazov", DOSTOEVSKY),
    ("novel", "Don Quixote", ["Miguel de Cervantes", "Cervantes", "Miguel de Cervantes Saavedra"]),
    ("novel", "The Great Gatsby", ["F. Scott Fitzgerald", "Scott Fitzgerald", "Fitzgerald",
                                   "Francis Scott Fitzgerald"]),
    ("novel", "To Kill a Mockingbird", ["Harper Lee"]),
    ("novel", "The Catcher in the Rye", ["J. D. Salinger", "J.D. Salinger", "Salinger",
                                         "Jerome David Salinger"]),
    ("novel", "Ulysses", ["James Joyce", "Joyce"]), ("epic poem", "The Odyssey", HOMER),
    ("epic poem", "The Iliad", HOMER), ("poem", "The Divine Comedy", ["Dante Alighieri", "Dante"]),
    ("novel", "Les Miserables", HUGO), ("novel", "The Hunchback of Notre-Dame", HUGO),
    ("novel", "The Count of Monte Cristo", DUMAS), ("novel", "The Three Musketeers", DUMAS),
    ("novel", "Madame Bovary", ["Gustave Flaubert", "Flaubert"]),
    ("novel", "Frankenstein", ["Mary Shelley", "Mary Wollstonecraft Shelley", "Shelley"]),
    ("novel", "Dracula", ["Bram Stoker", "Stoker", "Abraham Stoker"]),
    ("novel", "Jane Eyre", ["Charlotte Bronte", "Charlotte Brontë"]),
    ("novel", "Wuthering Heights", ["Emily Bronte", "Emily Brontë"]),
    ("novel", "Great Expectations", DICKENS), ("novel", "Oliver Twist", DICKENS),
    ("novel", "A Tale of Two Cities", DICKENS), ("novel", "David Copperfield", DICKENS),
    ("novella", "A Christmas Carol", DICKENS), ("novel", "The Adventures of Tom Sawyer", TWAIN),
    ("novel", "Adventures of Huckleberry Finn", TWAIN),
    ("novella", "The Old Man and the Sea", HEMINGWAY), ("novel", "A Farewell to Arms", HEMINGWAY),
    ("novella", "Of Mice and Men", STEINBECK), ("novel", "The Grapes of Wrath", STEINBECK),
    ("novel", "Brave New World", ["Aldous Huxley", "Huxley"]),
    ("novel", "Fahrenheit 451", ["Ray Bradbury", "Bradbury"]),
    ("novel", "The Lord of the Rings", TOLKIEN), ("novel", "The Hobbit", TOLKIEN),
    ("novel", "Harry Potter and the Philosopher's Stone", ROWLING),
    ("novel", "The Lion, the Witch and the Wardrobe", ["C. S. Lewis", "C.S. Lewis",
                                                       "Clive Staples Lewis"]),
    ("novel", "Alice's Adventures in Wonderland", ["Lewis Carroll", "Carroll", "Charles Dodgson",
                                                   "Charles Lutwidge Dodgson"]),
    ("novel", "Treasure Island", STEVENSON),
    ("novella", "Strange Case of Dr Jekyll and Mr Hyde", STEVENSON),
    ("novel", "Gulliver's Travels", ["Jonathan Swift", "Swift"]),
    ("novel", "Robinson Crusoe", ["Daniel Defoe", "Defoe"]),
    ("novel", "The Picture of Dorian Gray", WILDE), ("play", "The Importance of Being Earnest", WILDE),
    ("collection of stories", "The Canterbury Tales", ["Geoffrey Chaucer", "Chaucer"]),
    ("epic poem", "Paradise Lost", ["John Milton", "Milton"]),
    ("play", "Faust", ["Johann Wolfgang von Goethe", "Goethe", "Johann Wolfgang Goethe"]),
    ("novella", "The Metamorphosis", KAFKA), ("novel", "The Trial", KAFKA),
    ("novel", "One Hundred Years of Solitude", MARQUEZ),
    ("novel", "Love in the Time of Cholera", MARQUEZ),
    ("novella", "The Little Prince", ["Antoine de Saint-Exupery", "Antoine de Saint-Exupéry",
                                      "Saint-Exupery", "Saint-Exupéry"]),
    ("novel", "The Stranger", ["Albert Camus", "Camus"]),
    ("novel", "In Search of Lost Time", ["Marcel Proust", "Proust"]),
    ("novel", "Lolita", ["Vladimir Nabokov", "Nabokov"]), ("novel", "Beloved", ["Toni Morrison"]),
    ("novel", "The Handmaid's Tale", ["Margaret Atwood", "Atwood"]),
    ("novel", "Things Fall Apart", ["Chinua Achebe", "Achebe"]),
    ("novel", "Midnight's Children", ["Salman Rushdie", "Rushdie"]),
    ("novel", "The Da Vinci Code", ["Dan Brown"]), ("novel", "The Shining", KING),
    ("novel", "Carrie", KING), ("novel", "Murder on the Orient Express", ["Agatha Christie", "Christie"]),
    ("novel", "The Hound of the Baskervilles", ["Arthur Conan Doyle", "Conan Doyle",
                                                "Sir Arthur Conan Doyle", "Doyle"]),
    ("novel", "Twenty Thousand Leagues Under the Seas", VERNE),
    ("novel", "Around the World in Eighty Days", VERNE),
    ("novel", "The War of the Worlds", WELLS), ("novella", "The Time Machine", WELLS),
    ("novella", "Heart of Darkness", ["Joseph Conrad", "Conrad"]),
    ("novel", "Mrs Dalloway", ["Virginia Woolf", "Woolf"]),
    ("novel", "The Sound and the Fury", ["William Faulkner", "Faulkner"]),
    ("novel", "Catch-22", ["Joseph Heller", "Heller"]),
    ("novel", "Slaughterhouse-Five", ["Kurt Vonnegut", "Vonnegut"]),
    ("novel", "The Road", ["Cormac McCarthy", "McCarthy"]),
    ("novel", "Gone with the Wind", ["Margaret Mitchell"]),
    ("novel", "Little Women", ["Louisa May Alcott", "Alcott"]),
    ("novel", "Uncle Tom's Cabin", ["Harriet Beecher Stowe", "Beecher Stowe", "Stowe"]),
    ("novel", "The Scarlet Letter", ["Nathaniel Hawthorne", "Hawthorne"]),
    ("book", "Walden", ["Henry David Thoreau", "Thoreau"]),
    ("poetry collection", "Leaves of Grass", ["Walt Whitman", "Whitman"]),
    ("poem", "The Raven", ["Edgar Allan Poe", "Poe", "Edgar Poe"]),
    ("book", "The Jungle Book", ["Rudyard Kipling", "Kipling"]),
    ("play", "Peter Pan", ["J. M. Barrie", "J.M. Barrie", "Barrie", "James Matthew Barrie"]),
    ("book", "Winnie-the-Pooh", ["A. A. Milne", "A.A. Milne", "Milne", "Alan Alexander Milne"]),
    ("novel", "Charlie and the Chocolate Factory", DAHL), ("novel", "Matilda", DAHL),
    ("book", "The Cat in the Hat", ["Dr. Seuss", "Dr Seuss", "Theodor Geisel", "Seuss"]),
    ("novel", "Anne of Green Gables", ["Lucy Maud Montgomery", "L. M. Montgomery", "L.M. Montgomery",
                                       "Montgomery"]),
    ("novel", "The Wind in the Willows", ["Kenneth Grahame", "Grahame"]),
    ("novel", "The Adventures of Pinocchio", ["Carlo Collodi", "Collodi"]),
    ("novel", "The Name of the Rose", ["Umberto Eco", "Eco"]),
    ("novel", "The Alchemist", ["Paulo Coelho", "Coelho"]),
    ("novel", "Norwegian Wood", ["Haruki Murakami", "Murakami"]),
    ("novel", "The Kite Runner", ["Khaled Hosseini", "Hosseini"]),
    ("novel", "Life of Pi", ["Yann Martel", "Martel"]),
    ("novel", "The Hunger Games", ["Suzanne Collins"]),
    ("novel", "A Game of Thrones", ["George R. R. Martin", "George R.R. Martin", "George Martin"]),
    ("novel", "Dune", ["Frank Herbert", "Herbert"]), ("novel", "Foundation", ASIMOV),
    ("book", "I, Robot", ASIMOV), ("novel", "Neuromancer", ["William Gibson", "Gibson"]),
    ("novel", "The Hitchhiker's Guide to the Galaxy", ["Douglas Adams"]),
    ("novel", "Watership Down", ["Richard Adams"]),
    ("novel", "Lord of the Flies", ["William Golding", "Golding"]),
    ("novel", "A Clockwork Orange", ["Anthony Burgess", "Burgess"]),
    ("treatise", "The Prince", ["Niccolo Machiavelli", "Machiavelli", "Niccolò Machiavelli"]),
    ("treatise", "The Art of War", ["Sun Tzu", "Sunzi", "Sun Zi"]),
    ("dialogue", "The Republic", ["Plato"]),
    ("play", "Oedipus Rex", ["Sophocles"]), ("epic poem", "The Aeneid", ["Virgil", "Vergil"]),
    ("novel", "Doctor Zhivago", ["Boris Pasternak", "Pasternak"]),
    ("novel", "The Master and Margarita", ["Mikhail Bulgakov", "Bulgakov"]),
    ("novel in verse", "Eugene Onegin", ["Alexander Pushkin", "Pushkin", "Aleksandr Pushkin"]),
    ("novel", "Dead Souls", ["Nikolai Gogol", "Gogol"]), ("play", "The Seagull", CHEKHOV),
    ("play", "Uncle Vanya", CHEKHOV), ("play", "A Doll's House", ["Henrik Ibsen", "Ibsen"]),
    ("play", "Waiting for Godot", ["Samuel Beckett", "Beckett"]),
    ("play", "Death of a Salesman", MILLER), ("play", "The Crucible", MILLER),
    ("play", "A Streetcar Named Desire", ["Tennessee Williams"]),
    ("play", "Pygmalion", ["George Bernard Shaw", "Bernard Shaw", "Shaw"]),
    ("novel", "Charlotte's Web", ["E. B. White", "E.B. White", "Elwyn Brooks White"]),
    ("book", "The Wealth of Nations", ["Adam Smith"]),
    ("book", "On the Origin of Species", ["Charles Darwin", "Darwin"]),
    ("pamphlet", "The Communist Manifesto", ["Karl Marx", "Marx", "Friedrich Engels", "Engels",
                                             "Marx and Engels"]),
]

LIT_FACTS = [
    ("In which fictional city does Batman fight crime?", ["Gotham", "Gotham City"]),
    ("What is the name of Sherlock Holmes's friend and assistant?", ["Dr. Watson", "Watson",
                                                                     "John Watson", "Dr Watson"]),
    ("Which hobbit carries the One Ring to Mordor in The Lord of the Rings?", ["Frodo", "Frodo Baggins"]),
    ("What is the name of the school of witchcraft and wizardry that Harry Potter attends?",
     ["Hogwarts"]),
    ("Who is the obsessed captain of the Pequod in Moby-Dick?", ["Captain Ahab", "Ahab"]),
    ("What is the name of Don Quixote's squire?", ["Sancho Panza", "Sancho"]),
    ("Who narrates The Great Gatsby?", ["Nick Carraway", "Nick"]),
    ("Which Belgian detective was created by Agatha Christie?", ["Hercule Poirot", "Poirot"]),
    ("What is the name of the lion in The Chronicles of Narnia?", ["Aslan"]),
    ("What is the name of Harry Potter's owl?", ["Hedwig"]),
    ("What is the name of the pig in Charlotte's Web?", ["Wilbur"]),
    ("In which language did Dante write The Divine Comedy?", ["Italian", "Tuscan"]),
    ("What is the name of the boy who never grows up, created by J. M. Barrie?", ["Peter Pan"]),
    ("What is the name of the evil alter ego of Dr Jekyll?", ["Mr Hyde", "Hyde", "Edward Hyde",
                                                              "Mr. Hyde"]),
    ("Who creates the monster in Mary Shelley's novel?", ["Victor Frankenstein", "Frankenstein"]),
    ("What is the name of the dark lord in the Harry Potter books?", ["Voldemort", "Lord Voldemort",
                                                                     "Tom Riddle"]),
    ("What is the name of the wizard who guides the hobbits in The Lord of the Rings?",
     ["Gandalf", "Gandalf the Grey", "Gandalf the White"]),
    ("In George Orwell's Nineteen Eighty-Four, what is the name of the all-seeing leader?",
     ["Big Brother"]),
    ("Which fictional detective lives at 221B Baker Street?", ["Sherlock Holmes", "Holmes"]),
    ("What is the name of the girl who falls down a rabbit hole in Lewis Carroll's novel?", ["Alice"]),
    ("In which Shakespeare play does the character Shylock appear?", ["The Merchant of Venice",
                                                                      "Merchant of Venice"]),
    ("Which Shakespeare play features the line 'To be, or not to be'?", ["Hamlet"]),
    ("In which Shakespeare play is Desdemona murdered by her husband?", ["Othello"]),
    ("What is the name of the fairy who accompanies Peter Pan?", ["Tinker Bell", "Tinkerbell"]),
    ("In The Wonderful Wizard of Oz, what is the name of Dorothy's dog?", ["Toto"]),
    ("What is the name of the whale-hunting ship in Moby-Dick?", ["Pequod", "the Pequod"]),
    ("What is the first name of Mr Darcy's love in Pride and Prejudice?", ["Elizabeth", "Lizzy",
                                                                           "Eliza"]),
    ("Which Greek hero is the main character of Homer's Odyssey?", ["Odysseus", "Ulysses"]),
    ("What kind of creature is Smaug in The Hobbit?", ["dragon", "a dragon"]),
    ("Who wrote the poem 'The Road Not Taken'?", ["Robert Frost", "Frost"]),
    ("Who wrote the poem 'If—' that begins 'If you can keep your head'?", ["Rudyard Kipling",
                                                                          "Kipling"]),
    ("Which poet wrote 'Ode to a Nightingale'?", ["John Keats", "Keats"]),
    ("Which poet wrote 'The Waste Land'?", ["T. S. Eliot", "T.S. Eliot", "Eliot",
                                            "Thomas Stearns Eliot"]),
    ("Which poet wrote 'Daffodils' ('I Wandered Lonely as a Cloud')?", ["William Wordsworth",
                                                                        "Wordsworth"]),
    ("Which poet wrote 'Do not go gentle into that good night'?", ["Dylan Thomas"]),
    ("Which poet wrote 'The Rime of the Ancient Mariner'?", ["Samuel Taylor Coleridge", "Coleridge"]),
    ("Which American poet wrote 'Because I could not stop for Death'?", ["Emily Dickinson",
                                                                         "Dickinson"]),
]


def literature() -> list[tuple[str, list[str]]]:
    """Authors of famous works, characters and poems."""
    qs = [(f"Who wrote the {kind} '{title}'?", authors) for kind, title, authors in BOOKS]
    return qs + LIT_FACTS


# ---------------------------------------------------------------- arts
LEONARDO = ["Leonardo da Vinci", "Leonardo", "da Vinci"]
VAN_GOGH = ["Vincent van Gogh", "Van Gogh"]
PICASSO = ["Pablo Picasso", "Picasso"]
MONET = ["Claude Monet", "Monet"]
MICHELANGELO = ["Michelangelo", "Michelangelo Buonarroti"]
BOTTICELLI = ["Sandro Botticelli", "Botticelli"]
BEETHOVEN = ["Ludwig van Beethoven", "Beethoven"]
MOZART = ["Wolfgang Amadeus Mozart", "Mozart"]
TCHAIKOVSKY = ["Pyotr Ilyich Tchaikovsky", "Tchaikovsky", "Peter Tchaikovsky"]
HANDEL = ["George Frideric Handel", "Handel", "Georg Friedrich Händel"]
VERDI = ["Giuseppe Verdi", "Verdi"]
PUCCINI = ["Giacomo Puccini", "Puccini"]
WAGNER = ["Richard Wagner", "Wagner"]

PAINTINGS = [
    ("the Mona Lisa", LEONARDO), ("The Last Supper", LEONARDO), ("The Starry Night", VAN_GOGH),
    ("Sunflowers (the series of still lifes from 1888)", VAN_GOGH), ("The Scream", ["Edvard Munch", "Munch"]),
    ("Guernica", PICASSO), ("Les Demoiselles d'Avignon", PICASSO),
    ("The Persistence of Memory", ["Salvador Dali", "Salvador Dalí", "Dali", "Dalí"]),
    ("The Birth of Venus", BOTTICELLI), ("Primavera", BOTTICELLI),
    ("the ceiling of the Sistine Chapel", MICHELANGELO),
    ("Girl with a Pearl Earring", ["Johannes Vermeer", "Vermeer", "Jan Vermeer"]),
    ("The Night Watch", ["Rembrandt", "Rembrandt van Rijn"]),
    ("Impression, Sunrise", MONET), ("the Water Lilies series", MONET),
    ("The Kiss (the gold-leaf painting from Vienna)", ["Gustav Klimt", "Klimt"]),
    ("American Gothic", ["Grant Wood"]),
    ("Las Meninas", ["Diego Velazquez", "Diego Velázquez", "Velazquez", "Velázquez"]),
    ("The Garden of Earthly Delights", ["Hieronymus Bosch", "Bosch"]),
    ("Nighthawks", ["Edward Hopper", "Hopper"]), ("The School of Athens", ["Raphael", "Raffaello"]),
    ("Campbell's Soup Cans", ["Andy Warhol", "Warhol"]),
    ("The Son of Man (the man with an apple over his face)", ["Rene Magritte", "René Magritte", "Magritte"]),
    ("Liberty Leading the People", ["Eugene Delacroix", "Eugène Delacroix", "Delacroix"]),
    ("The Third of May 1808", ["Francisco Goya", "Goya", "Francisco de Goya"]),
    ("A Sunday Afternoon on the Island of La Grande Jatte", ["Georges Seurat", "Seurat"]),
    ("The Arnolfini Portrait", ["Jan van Eyck", "van Eyck"]),
    ("Luncheon of the Boating Party", ["Pierre-Auguste Renoir", "Renoir", "Auguste Renoir"]),
    ("Olympia (the 1863 nude)", ["Edouard Manet", "Édouard Manet", "Manet"]),
    ("The Hay Wain", ["John Constable", "Constable"]),
    ("The Fighting Temeraire", ["J. M. W. Turner", "J.M.W. Turner", "Turner", "William Turner"]),
    ("Wanderer above the Sea of Fog", ["Caspar David Friedrich", "Friedrich"]),
    ("The Gleaners", ["Jean-Francois Millet", "Jean-François Millet", "Millet"]),
    ("Christina's World", ["Andrew Wyeth", "Wyeth"]),
]

SCULPTURES = [
    ("the marble statue of David in Florence", MICHELANGELO),
    ("The Thinker", ["Auguste Rodin", "Rodin"]),
    ("the Pieta in St. Peter's Basilica", MICHELANGELO),
]

COMPOSITIONS = [
    ("the Moonlight Sonata", BEETHOVEN), ("Fur Elise", BEETHOVEN),
    ("the Ninth Symphony containing the 'Ode to Joy'", BEETHOVEN),
    ("the opera The Magic Flute", MOZART), ("Eine kleine Nachtmusik", MOZART),
    ("the opera The Marriage of Figaro", MOZART), ("the opera Don Giovanni", MOZART),
    ("The Four Seasons", ["Antonio Vivaldi", "Vivaldi"]), ("the ballet Swan Lake", TCHAIKOVSKY),
    ("the ballet The Nutcracker", TCHAIKOVSKY), ("the 1812 Overture", TCHAIKOVSKY),
    ("the Brandenburg Concertos", ["Johann Sebastian Bach", "J. S. Bach", "J.S. Bach", "Bach"]),
    ("the oratorio Messiah", HANDEL), ("Water Music", HANDEL),
    ("the waltz The Blue Danube", ["Johann Strauss II", "Johann Strauss", "Strauss",
                                   "Johann Strauss Jr."]),
    ("Bolero", ["Maurice Ravel", "Ravel"]), ("Clair de lune", ["Claude Debussy", "Debussy"]),
    ("the ballet The Rite of Spring", ["Igor Stravinsky", "Stravinsky"]),
    ("the orchestral suite The Planets", ["Gustav Holst", "Holst"]),
    ("the opera Carmen", ["Georges Bizet", "Bizet"]), ("the opera La traviata", VERDI),
    ("the opera Aida", VERDI), ("the opera Rigoletto", VERDI),
    ("the opera Madama Butterfly", PUCCINI), ("the opera La boheme", PUCCINI),
    ("the opera Tosca", PUCCINI), ("the opera The Barber of Seville", ["Gioachino Rossini", "Rossini"]),
    ("the Ride of the Valkyries", WAGNER), ("the opera cycle The Ring of the Nibelung", WAGNER),
    ("Rhapsody in Blue", ["George Gershwin", "Gershwin"]),
    ("the Peer Gynt suites", ["Edvard Grieg", "Grieg"]),
    ("the Hungarian Rhapsodies", ["Franz Liszt", "Liszt"]),
    ("the 'New World' Symphony", ["Antonin Dvorak", "Antonín Dvořák", "Dvorak", "Dvořák"]),
    ("the Canon in D", ["Johann Pachelbel", "Pachelbel"]),
    ("Peter and the Wolf", ["Sergei Prokofiev", "Prokofiev"]),
    ("Pictures at an Exhibition", ["Modest Mussorgsky", "Mussorgsky"]),
    ("Carmina Burana", ["Carl Orff", "Orff"]),
    ("the 'Unfinished' Symphony", ["Franz Schubert", "Schubert"]),
    ("the 'Minute Waltz'", ["Frederic Chopin", "Frédéric Chopin", "Chopin"]),
]

ART_FACTS = [
    ("Which Dutch painter cut off part of his own ear?", VAN_GOGH),
    ("Which Mexican painter is famous for her self-portraits and was married to Diego Rivera?",
     ["Frida Kahlo", "Kahlo", "Frida"]),
    ("In which museum does the Mona Lisa hang?", ["Louvre", "the Louvre", "Musee du Louvre"]),
    ("Which art movement did Claude Monet help to found?", ["Impressionism", "Impressionist",
                                                            "Impressionists"]),
    ("Which art movement is associated with Salvador Dali and Rene Magritte?",
     ["Surrealism", "Surrealist", "surrealists"]),
    ("Which art movement was founded by Pablo Picasso and Georges Braque?", ["Cubism", "Cubist"]),
    ("Which pop artist made prints of Marilyn Monroe?", ["Andy Warhol", "Warhol"]),
    ("Which American painter was known for his drip paintings?", ["Jackson Pollock", "Pollock"]),
    ("How many keys does a standard piano have?", num(88)),
    ("How many strings does a standard violin have?", num(4)),
    ("How many strings does a standard guitar have?", num(6)),
    ("How many symphonies did Beethoven complete?", num(9)),
    ("Which composer became deaf but continued to compose?", BEETHOVEN),
    ("Which instrument did Jimi Hendrix play?", ["guitar", "electric guitar"]),
    ("Which instrument has 47 strings and pedals and is played by plucking?", ["harp",
                                                                              "concert harp",
                                                                              "pedal harp"]),
    ("Which woodwind instrument is played by blowing across a hole rather than through a reed?",
     ["flute"]),
    ("Which is the largest and lowest-pitched instrument of the violin family?",
     ["double bass", "contrabass", "bass"]),
    ("In music, how many lines does a standard staff have?", num(5)),
    ("What Italian word is used in music to mean 'very loud'?", ["fortissimo"]),
    ("What Italian word is used in music to mean 'soft' or 'quietly'?", ["piano"]),
    ("Which German composer wrote the Mass in B minor and The Well-Tempered Clavier?",
     ["Johann Sebastian Bach", "J. S. Bach", "J.S. Bach", "Bach"]),
    ("Which Austrian composer left his Requiem unfinished when he died in 1791?", MOZART),
    ("Which Japanese artist made the woodblock print The Great Wave off Kanagawa?",
     ["Hokusai", "Katsushika Hokusai"]),
    ("Which Polish composer is famous for his piano nocturnes and mazurkas?",
     ["Frederic Chopin", "Frédéric Chopin", "Chopin"]),
    ("Which Italian architect designed the dome of Florence Cathedral?",
     ["Filippo Brunelleschi", "Brunelleschi"]),
    ("Which architect designed the Sagrada Familia in Barcelona?", ["Antoni Gaudi", "Antoni Gaudí",
                                                                    "Gaudi", "Gaudí"]),
    ("Which American architect designed the house Fallingwater?", ["Frank Lloyd Wright",
                                                                   "Lloyd Wright"]),
    ("Which architect designed the glass pyramid at the Louvre?", ["I. M. Pei", "I.M. Pei", "Pei",
                                                                  "Ieoh Ming Pei"]),
]


def arts() -> list[tuple[str, list[str]]]:
    """Painters, sculptors, composers and music and art facts."""
    qs = [(f"Who painted {title}?", names) for title, names in PAINTINGS]
    qs += [(f"Who sculpted {title}?", names) for title, names in SCULPTURES]
    qs += [(f"Who composed {title}?", names) for title, names in COMPOSITIONS]
    return qs + ART_FACTS


# ---------------------------------------------------------------- entertainment
SPIELBERG = ["Steven Spielberg", "Spielberg"]
HITCHCOCK = ["Alfred Hitchcock", "Hitchcock"]
KUBRICK = ["Stanley Kubrick", "Kubrick"]
NOLAN = ["Christopher Nolan", "Nolan"]
CAMERON = ["James Cameron"]
COPPOLA = ["Francis Ford Coppola", "Coppola"]
TARANTINO = ["Quentin Tarantino", "Tarantino"]
ZEMECKIS = ["Robert Zemeckis", "Zemeckis"]
RIDLEY = ["Ridley Scott"]

FILMS = [  # (film, director aliases)
    ("Jaws (1975)", SPIELBERG), ("Jurassic Park", SPIELBERG), ("Schindler's List", SPIELBERG),
    ("E.T. the Extra-Terrestrial", SPIELBERG), ("Psycho (1960)", HITCHCOCK), ("Vertigo", HITCHCOCK),
    ("The Birds (1963)", HITCHCOCK), ("The Godfather", COPPOLA), ("Apocalypse Now", COPPOLA),
    ("Pulp Fiction", TARANTINO), ("Kill Bill", TARANTINO), ("Titanic (1997)", CAMERON),
    ("Avatar (2009)", CAMERON), ("The Terminator", CAMERON),
    ("2001: A Space Odyssey", KUBRICK), ("The Shining (1980)", KUBRICK),
    ("A Clockwork Orange (1971)", KUBRICK), ("Star Wars (1977)", ["George Lucas", "Lucas"]),
    ("Inception", NOLAN), ("The Dark Knight", NOLAN), ("Oppenheimer (2023)", NOLAN),
    ("Seven Samurai", ["Akira Kurosawa", "Kurosawa"]), ("Citizen Kane", ["Orson Welles", "Welles"]),
    ("The Lord of the Rings film trilogy", ["Peter Jackson"]),
    ("Spirited Away", ["Hayao Miyazaki", "Miyazaki"]), ("Taxi Driver", ["Martin Scorsese", "Scorsese"]),
    ("Goodfellas", ["Martin Scorsese", "Scorsese"]), ("Alien (1979)", RIDLEY),
    ("Gladiator (2000)", RIDLEY), ("Blade Runner", RIDLEY), ("Back to the Future", ZEMECKIS),
    ("Forrest Gump", ZEMECKIS), ("Parasite (2019)", ["Bong Joon-ho", "Bong Joon Ho", "Bong"]),
    ("The Matrix", ["the Wachowskis", "Wachowskis", "Lana and Lilly Wachowski", "Wachowski"]),
    ("Annie Hall", ["Woody Allen"]), ("Raging Bull", ["Martin Scorsese", "Scorsese"]),
]

ROLES = [  # (role, actor aliases)
    ("Captain Jack Sparrow in Pirates of the Caribbean", ["Johnny Depp", "Depp"]),
    ("Forrest Gump", ["Tom Hanks", "Hanks"]),
    ("the Terminator in The Terminator (1984)", ["Arnold Schwarzenegger", "Schwarzenegger"]),
    ("Rocky Balboa", ["Sylvester Stallone", "Stallone"]),
    ("Indiana Jones", ["Harrison Ford"]), ("Han Solo in the original Star Wars", ["Harrison Ford"]),
    ("Vito Corleone in The Godfather", ["Marlon Brando", "Brando"]),
    ("Neo in The Matrix", ["Keanu Reeves", "Reeves"]),
    ("Jack Dawson in Titanic (1997)", ["Leonardo DiCaprio", "DiCaprio"]),
    ("Tony Stark / Iron Man in the Marvel Cinematic Universe", ["Robert Downey Jr.",
                                                                 "Robert Downey Jr", "Robert Downey"]),
    ("Hermione Granger in the Harry Potter films", ["Emma Watson"]),
    ("Harry Potter in the Harry Potter films", ["Daniel Radcliffe", "Radcliffe"]),
    ("James Bond in Dr. No (1962)", ["Sean Connery", "Connery"]),
    ("Holly Golightly in Breakfast at Tiffany's", ["Audrey Hepburn", "Hepburn"]),
    ("Dorothy in The Wizard of Oz (1939)", ["Judy Garland", "Garland"]),
    ("the Joker in The Dark Knight", ["Heath Ledger", "Ledger"]),
    ("Hannibal Lecter in The Silence of the Lambs", ["Anthony Hopkins", "Hopkins"]),
    ("Ellen Ripley in Alien", ["Sigourney Weaver", "Weaver"]),
    ("Rick Blaine in Casablanca", ["Humphrey Bogart", "Bogart"]),
]

SONGS = [  # (work, performer aliases)
    ("the album Abbey Road", ["The Beatles", "Beatles"]),
    ("the song 'Bohemian Rhapsody'", ["Queen"]), ("the album Thriller", ["Michael Jackson"]),
    ("the song 'Stairway to Heaven'", ["Led Zeppelin"]),
    ("the song 'Like a Rolling Stone'", ["Bob Dylan", "Dylan"]),
    ("the album The Dark Side of the Moon", ["Pink Floyd"]), ("the album Purple Rain", ["Prince"]),
    ("the song 'Imagine' (1971)", ["John Lennon", "Lennon"]),
    ("the song 'Smells Like Teen Spirit'", ["Nirvana"]),
    ("the song 'Billie Jean'", ["Michael Jackson"]), ("the song 'Hey Jude'", ["The Beatles", "Beatles"]),
    ("the song 'Dancing Queen'", ["ABBA"]), ("the song 'Like a Virgin'", ["Madonna"]),
    ("the song 'No Woman, No Cry'", ["Bob Marley", "Bob Marley and the Wailers", "Marley"]),
    ("the song 'Respect' made famous in 1967", ["Aretha Franklin", "Franklin"]),
    ("the song 'Heartbreak Hotel'", ["Elvis Presley", "Elvis"]),
    ("the song '(I Can't Get No) Satisfaction'", ["The Rolling Stones", "Rolling Stones"]),
    ("the album 21 (2011)", ["Adele"]), ("the song 'Hotel California'", ["Eagles", "The Eagles"]),
    ("the song 'Wonderwall'", ["Oasis"]),
]

ENT_FACTS = [
    ("Who was the lead singer of Queen?", ["Freddie Mercury", "Mercury"]),
    ("Who is known as the 'King of Rock and Roll'?", ["Elvis Presley", "Elvis"]),
    ("Who is known as the 'King of Pop'?", ["Michael Jackson"]),
    ("Who is the lead singer of the Rolling Stones?", ["Mick Jagger", "Jagger"]),
    ("Which band had the members John, Paul, George and Ringo?", ["The Beatles", "Beatles"]),
    ("From which city did the Beatles come?", ["Liverpool"]),
    ("Who created Mickey Mouse together with Ub Iwerks?", ["Walt Disney", "Disney"]),
    ("What is the name of the cowboy doll in Toy Story?", ["Woody", "Sheriff Woody"]),
    ("What is the name of the space ranger toy in Toy Story?", ["Buzz Lightyear", "Buzz"]),
    ("Which studio made the first fully computer-animated feature film, Toy Story?", ["Pixar",
                                                                                    "Pixar Animation Studios"]),
    ("What is the name of the lion cub hero of The Lion King?", ["Simba"]),
    ("What is the name of the snowman in Disney's Frozen?", ["Olaf"]),
    ("What is the name of the clownfish father searching for his son in Finding Nemo?", ["Marlin"]),
    ("What is the name of the green ogre in the 2001 DreamWorks film?", ["Shrek"]),
    ("Which fictional British secret agent has the code number 007?", ["James Bond", "Bond"]),
    ("What is the name of the fictional African country in Black Panther?", ["Wakanda"]),
    ("In Star Wars, who is Luke Skywalker's father?", ["Darth Vader", "Anakin Skywalker", "Vader",
                                                       "Anakin"]),
    ("In The Wizard of Oz, what colour are Dorothy's magic slippers in the 1939 film?", ["ruby", "red"]),
    ("Which animated family lives at 742 Evergreen Terrace in Springfield?", ["The Simpsons",
                                                                              "Simpsons", "Simpson"]),
    ("What is the name of the yellow family's father in The Simpsons?", ["Homer", "Homer Simpson"]),
    ("Which superhero is also known as the Man of Steel?", ["Superman", "Clark Kent", "Kal-El"]),
    ("What is Batman's real name?", ["Bruce Wayne"]), ("What is Spider-Man's real name?",
                                                       ["Peter Parker", "Miles Morales"]),
    ("Which city is home to the Hollywood film industry?", ["Los Angeles", "LA", "L.A."]),
    ("Which award is given annually by the Academy of Motion Picture Arts and Sciences?",
     ["Oscar", "Oscars", "Academy Award", "Academy Awards"]),
    ("Which film won the first Academy Award for Best Animated Feature in 2002?", ["Shrek"]),
    ("Which Italian plumber is Nintendo's best-known video game character?", ["Mario", "Super Mario"]),
    ("What is the name of the blue hedgehog mascot of Sega?", ["Sonic", "Sonic the Hedgehog"]),
    ("Which video game involves arranging falling blocks called tetrominoes?", ["Tetris"]),
    ("What is the name of the yellow electric Pokemon that accompanies Ash?", ["Pikachu"]),
    ("Which TV series features the fictional continent of Westeros?", ["Game of Thrones"]),
    ("In which fictional town is the TV series Stranger Things set?", ["Hawkins", "Hawkins, Indiana"]),
    ("Which British TV series follows a time-travelling alien in a police box called the TARDIS?",
     ["Doctor Who"]),
    ("What is the name of the coffee shop in the TV series Friends?", ["Central Perk"]),
]


def entertainment() -> list[tuple[str, list[str]]]:
    """Film directors, actors' roles, songs and albums, characters and games."""
    qs = [(f"Who directed the film {film}?", names) for film, names in FILMS]
    qs += [(f"Which actor played {role}?", names) for role, names in ROLES]
    qs += [(f"Which artist or band recorded {work}?", names) for work, names in SONGS]
    return qs + ENT_FACTS


# ---------------------------------------------------------------- people
EINSTEIN = ["Albert Einstein", "Einstein"]
NEWTON = ["Isaac Newton", "Newton", "Sir Isaac Newton"]
CURIE = ["Marie Curie", "Curie", "Marie Sklodowska-Curie", "Maria Sklodowska"]
EDISON = ["Thomas Edison", "Edison", "Thomas Alva Edison"]

INVENTIONS = [  # (what, by whom) -> "Who invented ...?"
    ("the telephone", ["Alexander Graham Bell", "Graham Bell", "Bell"]),
    ("the phonograph", EDISON), ("the World Wide Web", ["Tim Berners-Lee", "Berners-Lee"]),
    ("dynamite", ["Alfred Nobel", "Nobel"]),
    ("the movable-type printing press in Europe", ["Johannes Gutenberg", "Gutenberg"]),
    ("the first successful powered aeroplane", ["the Wright brothers", "Wright brothers",
                                                "Orville Wright", "Wilbur Wright", "Wright"]),
    ("the cotton gin", ["Eli Whitney", "Whitney"]), ("the safety elevator", ["Elisha Otis", "Otis"]),
    ("the Analytical Engine, an early mechanical computer design", ["Charles Babbage", "Babbage"]),
    ("the telegraph code made of dots and dashes", ["Samuel Morse", "Morse"]),
    ("the separate condenser that greatly improved the steam engine", ["James Watt", "Watt"]),
    ("the mercury-in-glass thermometer and a temperature scale still used in the US",
     ["Daniel Gabriel Fahrenheit", "Fahrenheit"]),
    ("the Linux kernel", ["Linus Torvalds", "Torvalds"]),
    ("the Python programming language", ["Guido van Rossum", "van Rossum"]),
    ("the polio vaccine that was first licensed in 1955", ["Jonas Salk", "Salk"]),
    ("the first vaccine, against smallpox", ["Edward Jenner", "Jenner"]),
]

DISCOVERIES = [  # -> "Who ...?"
    ("discovered penicillin", ["Alexander Fleming", "Fleming"]),
    ("developed the theory of relativity", EINSTEIN),
    ("formulated the laws of motion and universal gravitation", NEWTON),
    ("proposed the theory of evolution by natural selection",
     ["Charles Darwin", "Darwin", "Alfred Russel Wallace", "Wallace"]),
    ("discovered the elements polonium and radium", CURIE + ["Pierre Curie", "Marie and Pierre Curie"]),
    ("created the first widely recognised periodic table of the elements",
     ["Dmitri Mendeleev", "Mendeleev", "Dmitri Mendeleyev", "Mendeleyev"]),
    ("proposed a heliocentric model of the Solar System in 1543", ["Nicolaus Copernicus", "Copernicus"]),
    ("described the double helix structure of DNA in 1953 with Francis Crick",
     ["James Watson", "Watson"]),
    ("discovered X-rays in 1895", ["Wilhelm Rontgen", "Wilhelm Röntgen", "Rontgen", "Röntgen",
                                   "Roentgen", "Wilhelm Conrad Röntgen"]),
    ("discovered the electron in 1897", ["J. J. Thomson", "J.J. Thomson", "Thomson",
                                         "Joseph John Thomson"]),
    ("discovered the neutron in 1932", ["James Chadwick", "Chadwick"]),
    ("discovered the atomic nucleus with the gold foil experiment", ["Ernest Rutherford", "Rutherford"]),
    ("formulated the uncertainty principle", ["Werner Heisenberg", "Heisenberg"]),
    ("discovered the laws of planetary motion", ["Johannes Kepler", "Kepler"]),
    ("discovered the four largest moons of Jupiter in 1610", ["Galileo Galilei", "Galileo"]),
    ("founded psychoanalysis", ["Sigmund Freud", "Freud"]),
    ("developed pasteurisation", ["Louis Pasteur", "Pasteur"]),
    ("formulated the equations of classical electromagnetism",
     ["James Clerk Maxwell", "Maxwell"]),
    ("discovered that lightning is electricity with a kite experiment",
     ["Benjamin Franklin", "Franklin"]),
    ("is considered the first computer programmer", ["Ada Lovelace", "Lovelace", "Augusta Ada King"]),
    ("was the first person to walk on the Moon", ["Neil Armstrong", "Armstrong"]),
    ("first sailed across the Atlantic to the Americas in 1492", ["Christopher Columbus", "Columbus"]),
    ("was the first woman to win a Nobel Prize", CURIE),
    ("was the first woman to fly solo across the Atlantic Ocean", ["Amelia Earhart", "Earhart"]),
    ("was the nurse known as 'The Lady with the Lamp'", ["Florence Nightingale", "Nightingale"]),
    ("refused to give up her bus seat in Montgomery, Alabama, in 1955", ["Rosa Parks", "Parks"]),
    ("was the Greek philosopher who tutored Alexander the Great", ["Aristotle"]),
    ("was the teacher of Plato", ["Socrates"]),
    ("wrote the 'Elements', the classic textbook of geometry", ["Euclid"]),
    ("is the theorem about right-angled triangles (a² + b² = c²) named after", ["Pythagoras"]),
    ("founded the Scout movement", ["Robert Baden-Powell", "Baden-Powell", "Lord Baden-Powell"]),
    ("founded the International Red Cross", ["Henry Dunant", "Henri Dunant", "Dunant"]),
    ("was the archaeologist who found Tutankhamun's tomb", ["Howard Carter", "Carter"]),
]

FOUNDERS = [
    ("Microsoft", ["Bill Gates", "Gates", "Paul Allen", "Bill Gates and Paul Allen"]),
    ("Apple", ["Steve Jobs", "Jobs", "Steve Wozniak", "Wozniak", "Ronald Wayne"]),
    ("Facebook", ["Mark Zuckerberg", "Zuckerberg"]), ("Amazon", ["Jeff Bezos", "Bezos"]),
    ("SpaceX", ["Elon Musk", "Musk"]), ("Google", ["Larry Page", "Sergey Brin", "Page", "Brin"]),
    ("the Ford Motor Company", ["Henry Ford"]), ("Alibaba", ["Jack Ma", "Ma Yun"]),
    ("the Virgin Group", ["Richard Branson", "Branson"]),
    ("Wikipedia", ["Jimmy Wales", "Wales", "Larry Sanger", "Sanger"]),
]

BIRTHPLACES = [  # (person, country aliases) -> "In which country was X born?"
    ("Albert Einstein", ["Germany"]), ("Pablo Picasso", ["Spain"]),
    ("Vincent van Gogh", ["Netherlands", "Holland"]), ("Frida Kahlo", ["Mexico"]),
    ("Frederic Chopin", ["Poland"]), ("Mahatma Gandhi", ["India"]),
    ("Nelson Mandela", ["South Africa"]), ("Confucius", ["China"]),
    ("Marie Curie", ["Poland"]), ("Che Guevara", ["Argentina"]), ("Bob Marley", ["Jamaica"]),
    ("Pele", ["Brazil"]), ("Nicolaus Copernicus", ["Poland"]),
    ("Hans Christian Andersen", ["Denmark"]), ("Henrik Ibsen", ["Norway"]),
    ("Leo Tolstoy", ["Russia", "Russian Empire"]), ("Miguel de Cervantes", ["Spain"]),
    ("Ferdinand Magellan", ["Portugal"]), ("Wolfgang Amadeus Mozart", ["Austria", "Salzburg"]),
    ("Ludwig van Beethoven", ["Germany", "Bonn"]), ("Charles Darwin", country("England")),
    ("Isaac Newton", country("England")), ("Galileo Galilei", ["Italy", "Pisa"]),
    ("Leonardo da Vinci", ["Italy"]), ("Cleopatra", ["Egypt"]),
    ("Genghis Khan", ["Mongolia"]), ("Akira Kurosawa", ["Japan"]), ("Rabindranath Tagore", ["India"]),
    ("Gabriel Garcia Marquez", ["Colombia"]), ("Diego Maradona", ["Argentina"]),
]

REAL_NAMES = [
    ("Mark Twain", ["Samuel Clemens", "Samuel Langhorne Clemens", "Clemens"]),
    ("George Orwell", ["Eric Blair", "Eric Arthur Blair", "Blair"]),
    ("Dr. Seuss", ["Theodor Geisel", "Theodor Seuss Geisel", "Geisel"]),
    ("Freddie Mercury", ["Farrokh Bulsara", "Bulsara"]),
    ("Elton John", ["Reginald Dwight", "Reginald Kenneth Dwight", "Reg Dwight", "Dwight"]),
    ("Lady Gaga", ["Stefani Germanotta", "Stefani Joanne Angelina Germanotta", "Germanotta"]),
    ("Lewis Carroll", ["Charles Dodgson", "Charles Lutwidge Dodgson", "Dodgson"]),
    ("Voltaire", ["Francois-Marie Arouet", "François-Marie Arouet", "Arouet"]),
    ("Marilyn Monroe", ["Norma Jeane Mortenson", "Norma Jeane Baker", "Norma Jean", "Norma Jeane"]),
    ("Muhammad Ali", ["Cassius Clay", "Cassius Marcellus Clay"]),
]

PEOPLE_FACTS = [
    ("Who is the author of the Communist Manifesto together with Friedrich Engels?", ["Karl Marx", "Marx"]),
    ("Which scientist is famous for the equation E = mc²?", EINSTEIN),
    ("Which English naturalist sailed on HMS Beagle?", ["Charles Darwin", "Darwin"]),
    ("Which physicist was famously said to have been inspired by a falling apple?", NEWTON),
    ("Which Italian astronomer was tried by the Inquisition in 1633?", ["Galileo Galilei", "Galileo"]),
    ("Who is the wheelchair-using physicist who wrote 'A Brief History of Time'?",
     ["Stephen Hawking", "Hawking"]),
    ("Which 19th-century monk is called the father of genetics for his experiments with peas?",
     ["Gregor Mendel", "Mendel"]),
    ("Who was the first person to win Nobel Prizes in two different sciences?", CURIE),
    ("Which Serbian-American inventor pioneered alternating-current electrical systems?",
     ["Nikola Tesla", "Tesla"]),
    ("Who was the American civil rights leader assassinated in Memphis in 1968?",
     ["Martin Luther King Jr.", "Martin Luther King", "MLK"]),
    ("Which German monk started the Protestant Reformation?", ["Martin Luther", "Luther"]),
    ("Which British queen's reign lasted 70 years, the longest of any British monarch?",
     ["Elizabeth II", "Queen Elizabeth II", "Elizabeth"]),
    ("Who was the first female Prime Minister of India?", ["Indira Gandhi"]),
    ("Which American aviator made the first solo non-stop transatlantic flight in 1927?",
     ["Charles Lindbergh", "Lindbergh"]),
    ("Who was the Chinese philosopher whose sayings are collected in the Analects?", ["Confucius",
                                                                                     "Kong Fuzi",
                                                                                     "Kongzi"]),
    ("Who is the founder of Buddhism?", ["Siddhartha Gautama", "Gautama Buddha", "the Buddha", "Buddha",
                                         "Siddhartha"]),
    ("Which Greek physician is called the father of medicine?", ["Hippocrates"]),
    ("Which Greek historian is called the father of history?", ["Herodotus"]),
    ("Which Venetian merchant travelled to the court of Kublai Khan?", ["Marco Polo", "Polo"]),
    ("Who was the first American in orbit around the Earth, in 1962?", ["John Glenn", "Glenn"]),
    ("Which Indian mathematician, largely self-taught, worked with G. H. Hardy in Cambridge?",
     ["Srinivasa Ramanujan", "Ramanujan"]),
    ("Which English mathematician played a leading role in breaking the Enigma code at Bletchley Park?",
     ["Alan Turing", "Turing"]),
]


def people() -> list[tuple[str, list[str]]]:
    """Inventors, discoverers, founders, birthplaces, pen names and famous people."""
    qs = [(f"Who invented {what}?", names) for what, names in INVENTIONS]
    qs += [(f"Who {what}?", names) for what, names in DISCOVERIES]
    qs += [(f"Who founded {company}?", names) for company, names in FOUNDERS]
    qs += [(f"In which country was {person} born?", names) for person, names in BIRTHPLACES]
    qs += [(f"What was the real name of {person}?", names) for person, names in REAL_NAMES]
    return qs + PEOPLE_FACTS


# ---------------------------------------------------------------- science
# (element, symbol, atomic number); symbols that are common English words (He, As, Be, In, I)
# are never asked for, because "contains" would match ordinary text.
ELEMENTS = [
    ("hydrogen", "H", 1), ("helium", "He", 2), ("lithium", "Li", 3), ("beryllium", "Be", 4),
    ("boron", "B", 5), ("carbon", "C", 6), ("nitrogen", "N", 7), ("oxygen", "O", 8),
    ("fluorine", "F", 9), ("neon", "Ne", 10), ("sodium", "Na", 11), ("magnesium", "Mg", 12),
    ("aluminium", "Al", 13), ("silicon", "Si", 14), ("phosphorus", "P", 15), ("sulfur", "S", 16),
    ("chlorine", "Cl", 17), ("argon", "Ar", 18), ("potassium", "K", 19), ("calcium", "Ca", 20),
    ("titanium", "Ti", 22), ("chromium", "Cr", 24), ("manganese", "Mn", 25), ("iron", "Fe", 26),
    ("cobalt", "Co", 27), ("nickel", "Ni", 28), ("copper", "Cu", 29), ("zinc", "Zn", 30),
    ("arsenic", "As", 33), ("bromine", "Br", 35), ("krypton", "Kr", 36), ("silver", "Ag", 47),
    ("tin", "Sn", 50), ("iodine", "I", 53), ("xenon", "Xe", 54), ("tungsten", "W", 74),
    ("platinum", "Pt", 78), ("gold", "Au", 79), ("mercury", "Hg", 80), ("lead", "Pb", 82),
    ("uranium", "U", 92), ("radon", "Rn", 86), ("plutonium", "Pu", 94), ("strontium", "Sr", 38),
    ("barium", "Ba", 56), ("antimony", "Sb", 51), ("bismuth", "Bi", 83),
]
WORD_SYMBOLS = {"He", "As", "Be", "In", "I", "No", "At"}
ELEMENT_ALIASES = {"aluminium": ["aluminum"], "sulfur": ["sulphur"]}
SYMBOL_TO_NAME = {"Fe", "Na", "K", "Ag", "Au", "Pb", "Sn", "Cu", "Hg", "W", "Sb", "Zn", "Ca", "Mg",
                  "Cl", "Ne", "Pt", "U", "Ni", "Si", "Kr", "Xe", "Sr", "Ba", "Pu"}
ATOMIC_NUMBERS = {"hydrogen", "helium", "lithium", "carbon", "nitrogen", "oxygen", "neon", "sodium",
                  "magnesium", "aluminium", "chlorine", "calcium", "iron", "copper", "zinc", "silver",
                  "gold", "mercury", "lead", "uranium", "sulfur", "potassium", "argon", "fluorine"}

SI_UNITS = [
    ("force", ["newton", "newtons", "N"]), ("energy", ["joule", "joules", "J"]),
    ("power", ["watt", "watts", "W"]), ("electric current", ["ampere", "amperes", "amp", "amps"]),
    ("electric potential difference (voltage)", ["volt", "volts", "V"]),
    ("electrical resistance", ["ohm", "ohms"]), ("frequency", ["hertz", "Hz"]),
    ("pressure", ["pascal", "pascals", "Pa"]), ("thermodynamic temperature", ["kelvin", "kelvins", "K"]),
    ("mass", ["kilogram", "kilograms", "kg"]), ("length", ["metre", "meter", "metres", "meters"]),
    ("time", ["second", "seconds"]), ("amount of substance", ["mole", "moles", "mol"]),
    ("luminous intensity", ["candela", "candelas"]), ("electric charge", ["coulomb", "coulombs"]),
    ("capacitance", ["farad", "farads"]), ("magnetic flux density", ["tesla", "teslas"]),
    ("radioactivity (activity of a radionuclide)", ["becquerel", "becquerels", "Bq"]),
]

SPACE = [
    ("Which planet is closest to the Sun?", ["Mercury"]),
    ("What is the largest planet in the Solar System?", ["Jupiter"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("Which planet is famous for its large, bright ring system?", ["Saturn"]),
    ("Which planet is farthest from the Sun?", ["Neptune"]),
    ("Which planet is third from the Sun?", ["Earth", "the Earth"]),
    ("Which planet is second from the Sun?", ["Venus"]),
    ("Which planet is sixth from the Sun?", ["Saturn"]),
    ("Which planet is seventh from the Sun?", ["Uranus"]),
    ("How many planets are in the Solar System?", num(8)),
    ("What is the hottest planet in the Solar System?", ["Venus"]),
    ("Which planet rotates on its side, with an axial tilt of about 98 degrees?", ["Uranus"]),
    ("What is the largest moon of Saturn?", ["Titan"]),
    ("What is the largest moon of Jupiter?", ["Ganymede"]),
    ("Which former planet was reclassified as a dwarf planet in 2006?", ["Pluto"]),
    ("What is the name of the galaxy that contains our Solar System?", ["Milky Way", "the Milky Way"]),
    ("What is the star at the centre of our Solar System?", ["the Sun", "Sun", "Sol"]),
    ("What is the nearest star to the Sun?", ["Proxima Centauri", "Alpha Centauri", "Proxima"]),
    ("How many moons does Mars have?", num(2)),
    ("What is the name of Earth's only natural satellite?", ["Moon", "the Moon", "Luna"]),
    ("Which planet has the Great Red Spot?", ["Jupiter"]),
    ("What is the name of the boundary around a black hole beyond which nothing can escape?",
     ["event horizon"]),
    ("Which space telescope was launched in 1990 and named after an American astronomer?",
     ["Hubble", "Hubble Space Telescope"]),
    ("Which planet is often called Earth's twin because of its similar size?", ["Venus"]),
    ("How long does light from the Sun take to reach Earth, to the nearest minute?",
     num(8) + ["8 minutes", "eight minutes"]),
]

SCIENCE_FACTS = [
    ("What is the chemical formula for water?", ["H2O", "H₂O"]),
    ("What is the chemical name for common table salt?", ["sodium chloride", "NaCl"]),
    ("What is the chemical formula for table salt?", ["NaCl", "sodium chloride"]),
    ("What is the chemical formula for carbon dioxide?", ["CO2", "CO₂"]),
    ("What is the chemical formula for ozone?", ["O3", "O₃"]),
    ("What gas do plants absorb from the air for photosynthesis?", ["carbon dioxide", "CO2"]),
    ("What gas do plants release during photosynthesis?", ["oxygen", "O2"]),
    ("What is the most abundant gas in Earth's atmosphere?", ["nitrogen", "N2"]),
    ("What is the boiling point of water at sea level in degrees Celsius?", num(100)),
    ("What is the freezing point of water in degrees Celsius?", num(0)),
    ("What is the boiling point of water at sea level in degrees Fahrenheit?", ["212"]),
    ("What is the freezing point of water in degrees Fahrenheit?", ["32"]),
    ("Which organelle is known as the powerhouse of the cell?", ["mitochondria", "mitochondrion",
                                                                "mitochondrium"]),
    ("What is the largest organ of the human body?", ["skin", "the skin"]),
    ("How many bones are in the adult human body?", ["206"]),
    ("How many chambers does the human heart have?", num(4)),
    ("Which blood cells carry oxygen around the body?", ["red blood cells", "red blood cell",
                                                          "erythrocytes", "red cells"]),
    ("What is the longest bone in the human body?", ["femur", "thigh bone", "thighbone"]),
    ("What is the smallest bone in the human body?", ["stapes", "stirrup"]),
    ("What is the hardest natural substance?", ["diamond", "diamonds"]),
    ("What is the pH of pure water at 25 degrees Celsius?", num(7)),
    ("What does DNA stand for?", ["deoxyribonucleic acid"]),
    ("What is the process by which plants make food from sunlight?", ["photosynthesis"]),
    ("What is the positively charged particle in an atomic nucleus called?", ["proton", "protons"]),
    ("What is the negatively charged particle that orbits an atomic nucleus called?",
     ["electron", "electrons"]),
    ("What is the uncharged particle in an atomic nucleus called?", ["neutron", "neutrons"]),
    ("What force keeps the planets in orbit around the Sun?", ["gravity", "gravitation",
                                                               "gravitational force"]),
    ("What is the scientific study of living organisms called?", ["biology"]),
    ("What is the scientific study of earthquakes called?", ["seismology"]),
    ("What instrument measures atmospheric pressure?", ["barometer"]),
    ("What instrument records the shaking of earthquakes?", ["seismograph", "seismometer"]),
    ("Which vitamin does the skin make when exposed to sunlight?", ["vitamin D", "D3",
                                                                    "vitamin D3"]),
    ("Which metal is liquid at room temperature?", ["mercury"]),
    ("What is the most abundant element in the universe?", ["hydrogen"]),
    ("What is the lightest chemical element?", ["hydrogen"]),
    ("What type of animal is a whale?", ["mammal", "a mammal", "marine mammal"]),
    ("Which organ pumps blood around the body?", ["heart", "the heart"]),
    ("Which organs filter blood to produce urine?", ["kidneys", "kidney"]),
    ("Which organ produces insulin?", ["pancreas"]),
    ("Which organ produces bile?", ["liver"]),
    ("What is the change of state from gas to liquid called?", ["condensation"]),
    ("What is the change of state from solid directly to gas called?", ["sublimation"]),
    ("What is the change of state from liquid to solid called?", ["freezing", "solidification"]),
    ("What is the innermost layer of the Earth called?", ["inner core", "core"]),
    ("How many chromosomes are in a normal human body cell?", ["46", "forty-six", "23 pairs"]),
    ("How many teeth does a typical adult human have, including wisdom teeth?", ["32",
                                                                                "thirty-two"]),
    ("What is the approximate speed of light in a vacuum in kilometres per second?",
     ["300,000", "300000", "299,792", "299792", "299,792.458", "3 x 10^5", "three hundred thousand"]),
    ("Which scale measures the hardness of minerals from 1 to 10?", ["Mohs scale", "Mohs",
                                                                    "Mohs hardness scale"]),
    ("What is the common name for the chemical compound H2O when frozen?", ["ice"]),
    ("What type of rock is formed from cooled lava or magma?", ["igneous", "igneous rock"]),
    ("What type of rock is formed from layers of sediment?", ["sedimentary", "sedimentary rock"]),
    ("What type of rock is formed by heat and pressure changing other rocks?",
     ["metamorphic", "metamorphic rock"]),
    ("What is the name of the supercontinent that existed about 300 million years ago?",
     ["Pangaea", "Pangea"]),
    ("Which blood type is known as the universal donor for red blood cells?",
     ["O negative", "O-negative", "O neg", "type O negative"]),
    ("What is the main gas found in the Sun?", ["hydrogen"]),
    ("What part of the eye controls how much light enters it?", ["iris"]),
    ("What is the colour of the pigment chlorophyll?", ["green"]),
    ("What is the name of the layer of gas that protects Earth from ultraviolet radiation?",
     ["ozone layer", "ozone", "ozonosphere"]),
]


def science() -> list[tuple[str, list[str]]]:
    """Chemical elements, SI units, astronomy and general science."""
    qs = []
    for name, symbol, z in ELEMENTS:
        names = [name] + ELEMENT_ALIASES.get(name, [])
        if symbol not in WORD_SYMBOLS:
            qs.append((f"What is the chemical symbol for {name}?", [symbol]))
        if symbol in SYMBOL_TO_NAME:
            qs.append((f"Which chemical element has the symbol {symbol}?", names))
        if name in ATOMIC_NUMBERS:
            qs.append((f"What is the atomic number of {name}?", num(z)))
    qs += [(f"What is the SI unit of {quantity}?", units) for quantity, units in SI_UNITS]
    return qs + SPACE + SCIENCE_FACTS


# ---------------------------------------------------------------- numbers
COUNTS = [  # "How many ...?" -> number
    ("days are there in a week", 7), ("months are there in a year", 12),
    ("hours are there in a day", 24), ("minutes are there in an hour", 60),
    ("seconds are there in a minute", 60), ("days are there in a leap year", 366),
    ("days are there in a common (non-leap) year", 365), ("weeks are there in a year", 52),
    ("years are there in a century", 100), ("years are there in a millennium", 1000),
    ("years are there in a decade", 10), ("sides does a triangle have", 3),
    ("sides does a square have", 4), ("sides does a pentagon have", 5),
    ("sides does a hexagon have", 6), ("sides does a heptagon have", 7),
    ("sides does an octagon have", 8), ("sides does a nonagon have", 9),
    ("sides does a decagon have", 10), ("sides does a dodecagon have", 12),
    ("legs does a spider have", 8), ("legs does an insect have", 6), ("legs does a dog have", 4),
    ("cards are in a standard deck of playing cards, without jokers", 52),
    ("squares are there on a chessboard", 64), ("colours are traditionally listed in a rainbow", 7),
    ("degrees are there in a right angle", 90), ("degrees are there in a full circle", 360),
    ("degrees do the interior angles of a triangle add up to", 180),
    ("faces does a cube have", 6), ("edges does a cube have", 12), ("vertices does a cube have", 8),
    ("zeros are there in one million", 6), ("zeros are there in one billion (short scale)", 9),
    ("cents are there in a US dollar", 100), ("centimetres are there in a metre", 100),
    ("millimetres are there in a centimetre", 10), ("grams are there in a kilogram", 1000),
    ("metres are there in a kilometre", 1000), ("inches are there in a foot", 12),
    ("feet are there in a yard", 3), ("ounces are there in a pound", 16),
    ("pounds are there in a stone", 14), ("feet are there in a mile", 5280),
    ("yards are there in a mile", 1760), ("hearts does an octopus have", 3),
    ("items make a dozen", 12), ("items make a baker's dozen", 13), ("items make a gross", 144),
    ("items make a score", 20), ("minutes are there in a day", 1440),
    ("seconds are there in an hour", 3600), ("days are there in February in a leap year", 29),
    ("states are there in the United States", 50), ("stars are on the flag of the United States", 50),
    ("stripes are on the flag of the United States", 13),
    ("letters are there in the English alphabet", 26), ("bits are there in a byte", 8),
    ("lines does a sonnet have", 14), ("lines does a limerick have", 5),
    ("syllables does a traditional English-language haiku have", 17),
    ("years of marriage does a golden wedding anniversary mark", 50),
    ("years of marriage does a silver wedding anniversary mark", 25),
    ("wheels does a bicycle have", 2), ("wheels does a tricycle have", 3),
    ("fingers are there on one human hand, including the thumb", 5),
    ("dwarfs are there in the story of Snow White", 7), ("continents are there", 7),
    ("players are in a string quartet", 4), ("days are there in the month of April", 30),
    ("days are there in the month of October", 31), ("pairs of ribs does a typical human have", 12),
    ("sides does a standard stop sign have", 8), ("dots are on a standard six-sided die in total", 21),
    ("books are in the Harry Potter series", 7), ("players are on the court in a singles tennis match", 2),
]

ROMAN = [("X", 10), ("V", 5), ("L", 50), ("C", 100), ("D", 500), ("M", 1000), ("XL", 40),
         ("XC", 90), ("IX", 9), ("XIV", 14), ("MMXX", 2020), ("XXI", 21), ("LX", 60),
         ("CD", 400), ("MCMLXXXIV", 1984)]

OPS = [("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b), ("times", lambda a, b: a * b)]
ARITHMETIC = [(2, "plus", 2), (3, "plus", 4), (5, "plus", 5), (7, "plus", 8), (9, "plus", 6),
              (12, "plus", 13), (25, "plus", 25), (100, "plus", 250), (10, "minus", 3),
              (20, "minus", 8), (15, "minus", 7), (100, "minus", 1), (50, "minus", 20),
              (2, "times", 3), (3, "times", 3), (4, "times", 5), (6, "times", 7), (7, "times", 8),
              (9, "times", 9), (8, "times", 6), (11, "times", 11), (12, "times", 12),
              (10, "times", 10), (5, "times", 20), (25, "times", 4), (3, "times", 9)]
SQUARE_ROOTS = [4, 9, 16, 25, 49, 64, 81, 100, 144, 169]
HALVES = [10, 50, 100, 36, 1000, 20, 8, 60, 200, 14, 30, 500]

NUMBER_FACTS = [
    ("What is the smallest prime number?", num(2)),
    ("What is the value of pi to two decimal places?", ["3.14"]),
    ("What is the next prime number after 7?", num(11)),
    ("What is 10 percent of 200?", num(20)),
    ("What is 50 percent of 80?", num(40)),
    ("What is 25 percent of 200?", num(50)),
    ("What is the Roman numeral for 5?", ["V"]),
    ("What is the Roman numeral for 100?", ["C"]),
    ("What is the Roman numeral for 1000?", ["M"]),
    ("What is the Roman numeral for 50?", ["L"]),
    ("What is the number 1000 called in words?", ["one thousand", "a thousand", "thousand"]),
    ("What is 2 to the power of 10?", ["1024"]),
    ("What is the sum of the angles in a square, in degrees?", num(360)),
    ("How many minutes are in two hours?", ["120"]),
    ("How many hours are in a week?", ["168"]),
    ("What is the next number in the sequence 2, 4, 6, 8?", num(10)),
    ("What is the next number in the sequence 1, 2, 4, 8, 16?", ["32"]),
    ("What is the next number in the Fibonacci sequence 1, 1, 2, 3, 5, 8?", num(13)),
    ("Which number is neither prime nor composite and is the multiplicative identity?", num(1)),
]


def numbers() -> list[tuple[str, list[str]]]:
    """Counting facts, units, Roman numerals and arithmetic with computed answers."""
    qs = [(f"How many {what}?", num(n)) for what, n in COUNTS]
    qs += [(f"What number does the Roman numeral {r} represent?", num(n)) for r, n in ROMAN]
    ops = dict(OPS)
    qs += [(f"What is {a} {op} {b}?", num(ops[op](a, b))) for a, op, b in ARITHMETIC]
    qs += [(f"What is the square root of {n}?", num(round(n ** 0.5))) for n in SQUARE_ROOTS]
    qs += [(f"What is half of {n}?", num(n // 2)) for n in HALVES]
    return qs + NUMBER_FACTS


# ---------------------------------------------------------------- language
OFFICIAL_LANGUAGES = [
    ("Brazil", ["Portuguese"]),
    ("Egypt", ["Arabic", "Egyptian Arabic"]), ("Iran", ["Persian", "Farsi"]), ("Israel", ["Hebrew"]),
    ("the Netherlands", ["Dutch"]), ("Austria", ["German"]), ("Greece", ["Greek"]),
    ("Turkey", ["Turkish"]), ("Poland", ["Polish"]), ("Sweden", ["Swedish"]), ("Thailand", ["Thai"]),
    ("Vietnam", ["Vietnamese"]), ("Portugal", ["Portuguese"]),
    ("Pakistan", ["Urdu", "English"]), ("Bangladesh", ["Bengali", "Bangla"]),
    ("Indonesia", ["Indonesian", "Bahasa Indonesia"]), ("Angola", ["Portuguese"]),
    ("Mozambique", ["Portuguese"]), ("Colombia", ["Spanish"]),
    ("Cuba", ["Spanish"]), ("Saudi Arabia", ["Arabic"]), ("Iceland", ["Icelandic"]),
    ("Finland", ["Finnish", "Swedish"]), ("Hungary", ["Hungarian", "Magyar"]),
    ("Romania", ["Romanian"]), ("Czechia", ["Czech"]), ("Ukraine", ["Ukrainian"]),
    ("South Korea", ["Korean"]), ("Mongolia", ["Mongolian"]),
    ("Norway", ["Norwegian"]), ("Malaysia", ["Malay", "Bahasa Malaysia"]), ("Italy", ["Italian"]),
    ("Germany", ["German"]), ("France", ["French"]), ("Spain", ["Spanish", "Castilian"]),
    ("Russia", ["Russian"]), ("Peru", ["Spanish", "Quechua", "Aymara"]), ("Venezuela", ["Spanish"]),
    ("Lebanon", ["Arabic"]), ("Syria", ["Arabic"]), ("Iraq", ["Arabic", "Kurdish"]),
    ("Jordan", ["Arabic"]), ("Morocco", ["Arabic", "Berber", "Tamazight"]),
    ("Algeria", ["Arabic", "Berber", "Tamazight"]), ("Tunisia", ["Arabic"]), ("Libya", ["Arabic"]),
    ("Cambodia", ["Khmer"]), ("Laos", ["Lao", "Laotian"]), ("Myanmar", ["Burmese"]),
    ("Nepal", ["Nepali"]), ("Sri Lanka", ["Sinhala", "Tamil", "Sinhalese"]),
    ("Bulgaria", ["Bulgarian"]), ("Serbia", ["Serbian"]), ("Croatia", ["Croatian"]),
    ("Slovakia", ["Slovak"]), ("Slovenia", ["Slovene", "Slovenian"]), ("Lithuania", ["Lithuanian"]),
    ("Latvia", ["Latvian"]), ("Estonia", ["Estonian"]), ("the country of Georgia", ["Georgian"]),
    ("Armenia", ["Armenian"]), ("Albania", ["Albanian"]), ("Belarus", ["Belarusian", "Russian"]),
    ("Kazakhstan", ["Kazakh", "Russian"]), ("Uzbekistan", ["Uzbek"]), ("Tajikistan", ["Tajik"]),
    ("Afghanistan", ["Pashto", "Dari"]), ("Haiti", ["Haitian Creole", "French", "Creole"]),
    ("Luxembourg", ["Luxembourgish", "French", "German"]), ("Belgium", ["Dutch", "French", "German"]),
    ("Switzerland", ["German", "French", "Italian", "Romansh"]), ("Ireland", ["Irish", "English"]),
    ("Singapore", ["English", "Malay", "Mandarin", "Tamil"]), ("Canada", ["English", "French"]),
    ("the Philippines", ["Filipino", "English"]), ("Kenya", ["Swahili", "English"]),
    ("Tanzania", ["Swahili", "Kiswahili", "English"]), ("Somalia", ["Somali", "Arabic"]),
    ("Rwanda", ["Kinyarwanda", "French", "English", "Swahili"]), ("Madagascar", ["Malagasy", "French"]),
    ("Greenland", ["Greenlandic", "Kalaallisut"]), ("Qatar", ["Arabic"]), ("Kuwait", ["Arabic"]), ("China", ["Mandarin", "Standard Chinese",
                                                               "Chinese", "Mandarin Chinese"]),
]

# no de jure official language, so the question asks for the main language
MAIN_LANGUAGES = [("Argentina", ["Spanish"]), ("Mexico", ["Spanish"]), ("Chile", ["Spanish"]),
                  ("Japan", ["Japanese"]), ("Denmark", ["Danish"]), ("Australia", ["English"]),
                  ("the United Kingdom", ["English"]), ("the United States", ["English"]),
                  ("Uruguay", ["Spanish"]), ("New Zealand", ["English"])]

TRANSLATIONS = [  # (language, English word, accepted translations)
    ("French", "cat", ["chat"]), ("Spanish", "hello", ["hola"]), ("German", "thank you", ["danke",
                                                                                       "danke schön",
                                                                                       "danke schon"]),
    ("Italian", "goodbye", ["arrivederci", "ciao", "addio"]), ("French", "thank you", ["merci"]),
    ("Spanish", "thank you", ["gracias"]), ("Japanese", "thank you", ["arigatou", "arigato",
                                                                     "arigatō", "arigatou gozaimasu"]),
    ("German", "dog", ["Hund"]), ("Spanish", "water", ["agua"]), ("French", "water", ["eau"]),
    ("French", "bread", ["pain"]), ("Spanish", "cat", ["gato"]), ("Italian", "hello", ["ciao",
                                                                                    "buongiorno"]),
    ("German", "house", ["Haus"]), ("Spanish", "house", ["casa"]), ("French", "yes", ["oui"]),
    ("German", "yes", ["ja"]), ("Spanish", "good night", ["buenas noches"]),
    ("French", "good morning", ["bonjour"]), ("Spanish", "one", ["uno", "una"]),
    ("German", "one", ["eins"]), ("Spanish", "red", ["rojo", "roja"]), ("French", "red", ["rouge"]),
    ("German", "red", ["rot"]), ("Spanish", "friend", ["amigo", "amiga"]),
    ("French", "friend", ["ami", "amie"]), ("Spanish", "book", ["libro"]), ("French", "book", ["livre"]),
    ("German", "water", ["Wasser"]), ("Italian", "thank you", ["grazie"]),
    ("Portuguese", "thank you", ["obrigado", "obrigada"]), ("Russian", "yes", ["da"]),
    ("German", "no", ["nein"]), ("Spanish", "dog", ["perro", "perra"]), ("French", "dog", ["chien",
                                                                                        "chienne"]),
    ("Italian", "love", ["amore"]), ("French", "love", ["amour"]), ("Spanish", "love", ["amor"]),
    ("German", "love", ["Liebe"]), ("Spanish", "sun", ["sol"]), ("French", "sun", ["soleil"]),
    ("Spanish", "moon", ["luna"]), ("French", "moon", ["lune"]), ("German", "moon", ["Mond"]),
    ("German", "sun", ["Sonne"]), ("Italian", "water", ["acqua"]), ("Spanish", "please", ["por favor"]),
    ("French", "please", ["s'il vous plaît", "s'il vous plait", "s'il te plaît", "s'il te plait"]),
    ("Spanish", "goodbye", ["adiós", "adios", "hasta luego"]), ("French", "goodbye", ["au revoir",
                                                                                      "adieu"]),
    ("German", "goodbye", ["auf Wiedersehen", "tschüss", "tschuss"]),
    ("Spanish", "milk", ["leche"]), ("French", "milk", ["lait"]), ("German", "cat", ["Katze"]),
    ("Italian", "cat", ["gatto", "gatta"]), ("Spanish", "black", ["negro", "negra"]),
    ("French", "white", ["blanc", "blanche"]), ("German", "white", ["weiß", "weiss"]),
    ("Spanish", "white", ["blanco", "blanca"]),
]

IRREGULAR = [
    ("plural of 'mouse'", ["mice"]), ("plural of 'child'", ["children"]),
    ("plural of 'goose'", ["geese"]), ("plural of 'tooth'", ["teeth"]), ("plural of 'foot'", ["feet"]),
    ("plural of 'man'", ["men"]), ("plural of 'ox'", ["oxen"]), ("plural of 'cactus'",
                                                                 ["cacti", "cactuses"]),
    ("plural of 'person'", ["people", "persons"]), ("plural of 'woman'", ["women"]),
    ("plural of 'knife'", ["knives"]), ("plural of 'leaf'",
                                                                          ["leaves"]),
    ("past tense of 'go'", ["went"]), ("past tense of 'eat'", ["ate"]), ("past tense of 'run'", ["ran"]),
    ("past tense of 'see'", ["saw"]), ("past tense of 'swim'", ["swam"]),
    ("past tense of 'buy'", ["bought"]), ("past tense of 'think'", ["thought"]),
    ("past tense of 'write'", ["wrote"]), ("past tense of 'sing'", ["sang"]),
    ("past tense of 'take'", ["took"]), ("past tense of 'fly'", ["flew"]),
    ("plural of 'wolf'", ["wolves"]), ("plural of 'baby'", ["babies"]), ("plural of 'city'", ["cities"]),
    ("plural of 'box'", ["boxes"]), ("plural of 'bus'", ["buses", "busses"]),
    ("plural of 'potato'", ["potatoes"]), ("plural of 'life'", ["lives"]), ("plural of 'wife'", ["wives"]),
    ("plural of 'half'", ["halves"]), ("plural of 'louse'", ["lice"]), ("plural of 'die' (the cube)",
                                                                          ["dice"]),
    ("plural of 'crisis'", ["crises"]), ("plural of 'phenomenon'", ["phenomena"]),
    ("past tense of 'drink'", ["drank"]), ("past tense of 'begin'", ["began"]),
    ("past tense of 'give'", ["gave"]), ("past tense of 'come'", ["came"]),
    ("past tense of 'speak'", ["spoke"]), ("past tense of 'drive'", ["drove"]),
]

OPPOSITES = [
    ("hot", ["cold"]), ("up", ["down"]), ("big", ["small", "little", "tiny"]), ("happy", ["sad", "unhappy"]),
    ("open", ["closed", "shut", "close"]), ("fast", ["slow"]), ("day", ["night"]),
    ("left", ["right"]), ("black", ["white"]), ("win", ["lose"]), ("rich", ["poor"]),
    ("top", ["bottom"]), ("early", ["late"]), ("full", ["empty"]), ("true", ["false"]),
    ("push", ["pull"]), ("north", ["south"]), ("east", ["west"]), ("wet", ["dry"]),
    ("inside", ["outside"]), ("love", ["hate"]), ("buy", ["sell"]),
    ("always", ["never"]), ("first", ["last"]), ("summer", ["winter"]),
    ("cold", ["hot", "warm"]), ("down", ["up"]), ("small", ["big", "large"]), ("sad", ["happy"]),
    ("slow", ["fast", "quick"]), ("night", ["day"]), ("white", ["black"]), ("lose", ["win", "find"]),
    ("poor", ["rich", "wealthy"]), ("late", ["early"]), ("empty", ["full"]), ("false", ["true"]),
    ("pull", ["push"]), ("south", ["north"]), ("west", ["east"]), ("dry", ["wet"]),
    ("hate", ["love"]), ("sell", ["buy"]), ("never", ["always"]), ("last", ["first"]),
    ("winter", ["summer"]), ("young", ["old"]), ("hard", ["soft", "easy"]), ("heavy", ["light"]),
    ("tall", ["short"]), ("thick", ["thin"]), ("clean", ["dirty"]), ("good", ["bad", "evil"]),
    ("strong", ["weak"]), ("loud", ["quiet", "soft"]), ("alive", ["dead"]), ("start", ["finish", "end",
                                                                                     "stop"]),
    ("before", ["after"]), ("under", ["over", "above"]), ("high", ["low"]), ("give", ["take",
                                                                                 "receive"]),
    ("friend", ["enemy", "foe"]), ("boy", ["girl"]), ("king", ["queen"]), ("brother", ["sister"]),
    ("father", ["mother"]), ("husband", ["wife"]), ("entrance", ["exit"]), ("arrive", ["leave",
                                                                                    "depart"]),
    ("remember", ["forget"]), ("laugh", ["cry"]), ("sweet", ["sour", "bitter"]), ("near", ["far"]),
    ("cheap", ["expensive", "dear"]), ("war", ["peace"]), ("noisy", ["quiet", "silent"]),
]

LANGUAGE_FACTS = [
    ("What is the first letter of the Greek alphabet?", ["alpha"]),
    ("What is the last letter of the Greek alphabet?", ["omega"]),
    ("Which alphabet is used to write Russian?", ["Cyrillic", "Cyrillic alphabet", "Cyrillic script"]),
    ("Which language has the most native speakers in the world?", ["Mandarin", "Mandarin Chinese",
                                                                   "Chinese"]),
    ("What language was spoken in ancient Rome?", ["Latin"]),
    ("What writing system did the ancient Egyptians use for monuments?",
     ["hieroglyphs", "hieroglyphics", "hieroglyphic", "hieroglyphic writing"]),
    ("What punctuation mark ends a question in English?", ["question mark"]),
    ("What is a word with the opposite meaning of another word called?", ["antonym", "antonyms"]),
    ("What is a word with the same meaning as another word called?", ["synonym", "synonyms"]),
    ("What is a word that reads the same backwards and forwards called?", ["palindrome"]),
    ("What is a word that sounds the same as another but has a different meaning called?",
     ["homophone", "homophones"]),
    ("How many vowels are in the English alphabet (not counting Y)?", num(5)),
    ("What part of speech describes an action, such as 'run' or 'eat'?", ["verb", "verbs"]),
    ("What part of speech names a person, place or thing?", ["noun", "nouns"]),
    ("What part of speech describes a noun, such as 'big' or 'red'?", ["adjective", "adjectives"]),
    ("What is the sole official language of the Canadian province of Quebec?", ["French"]),
    ("In which country is Catalan an official regional language?", ["Spain", "Andorra"]),
    ("Which language are the original texts of the Quran written in?", ["Arabic", "Classical Arabic"]),
    ("Which Indian language is written in the Devanagari script and is an official language of India?",
     ["Hindi"]),
    ("What is the Japanese word for a short poem of 5, 7 and 5 syllables?", ["haiku"]),
    ("What is the name of the Korean alphabet?", ["Hangul", "Hangeul", "Chosongul"]),
]


def language() -> list[tuple[str, list[str]]]:
    """Official languages, translations, grammar and words."""
    qs = [(f"What is the official language of {c}?", a) for c, a in OFFICIAL_LANGUAGES]
    qs += [(f"What is the main language spoken in {c}?", a) for c, a in MAIN_LANGUAGES]
    qs += [(f"What is the {lang} word for '{word}'?", a) for lang, word, a in TRANSLATIONS]
    qs += [(f"What is the {what}?", a) for what, a in IRREGULAR]
    qs += [(f"What is the opposite of '{word}'?", a) for word, a in OPPOSITES]
    return qs + LANGUAGE_FACTS


# ---------------------------------------------------------------- nature
YOUNG = [
    ("frog", ["tadpole", "froglet", "polliwog"]), ("dog", ["puppy", "pup"]), ("cat", ["kitten", "kitty"]),
    ("cow", ["calf"]), ("horse", ["foal", "colt", "filly"]), ("sheep", ["lamb"]), ("goat", ["kid"]),
    ("kangaroo", ["joey"]), ("swan", ["cygnet"]), ("duck", ["duckling"]), ("goose", ["gosling"]),
    ("pig", ["piglet"]), ("bear", ["cub"]), ("lion", ["cub"]), ("deer", ["fawn"]), ("owl", ["owlet"]),
    ("eagle", ["eaglet"]), ("hen", ["chick"]), ("butterfly", ["caterpillar", "larva"]),
]

SOUNDS = [  # verb forms are added by nature()
    ("cow", ["moo"]), ("dog", ["bark", "woof", "growl", "howl"]), ("cat", ["meow", "miaow", "mew", "purr"]),
    ("sheep", ["baa", "bleat"]), ("pig", ["oink", "grunt"]), ("horse", ["neigh", "whinny"]),
    ("duck", ["quack"]), ("lion", ["roar"]), ("owl", ["hoot", "twit-twoo"]), ("snake", ["hiss"]),
    ("bee", ["buzz"]), ("donkey", ["bray", "hee-haw"]), ("rooster", ["cock-a-doodle-doo", "crow"]),
    ("frog", ["croak", "ribbit"]), ("mouse", ["squeak"]),
]

GROUPS = [
    ("lions", ["pride"]), ("wolves", ["pack"]), ("fish", ["school", "shoal"]), ("crows", ["murder"]),
    ("geese", ["gaggle", "skein"]), ("cows", ["herd"]), ("bees", ["swarm", "colony", "hive"]),
    ("owls", ["parliament"]), ("sheep", ["flock"]), ("ants", ["colony"]),
]

ANIMAL_CLASS = [
    ("frog", ["amphibian"]), ("snake", ["reptile"]), ("shark", ["fish", "cartilaginous fish"]),
    ("bat", ["mammal"]), ("penguin", ["bird"]), ("dolphin", ["mammal"]), ("spider", ["arachnid"]),
    ("crocodile", ["reptile"]), ("salamander", ["amphibian"]), ("ostrich", ["bird"]),
    ("turtle", ["reptile"]), ("butterfly", ["insect"]),
    ("whale shark", ["fish"]), ("eagle", ["bird"]), ("lizard", ["reptile"]),
    ("toad", ["amphibian"]), ("horse", ["mammal"]), ("ant", ["insect"]), ("scorpion", ["arachnid"]),
    ("parrot", ["bird"]), ("salmon", ["fish"]), ("kangaroo", ["mammal", "marsupial"]),
    ("bee", ["insect"]), ("owl", ["bird"]), ("tortoise", ["reptile"]), ("tuna", ["fish"]),
    ("elephant", ["mammal"]), ("beetle", ["insect"]), ("newt", ["amphibian"]), ("seal", ["mammal"]),
]

NATURE_FACTS = [
    ("What is the largest mammal on Earth?", ["blue whale"]),
    ("What is the largest land animal?", ["African elephant", "elephant", "African bush elephant"]),
    ("What is the tallest animal?", ["giraffe"]),
    ("What is the fastest land animal?", ["cheetah"]),
    ("What is the fastest bird when diving?", ["peregrine falcon", "peregrine"]),
    ("What is the largest living bird?", ["ostrich", "common ostrich"]),
    ("What is the largest fish in the world?", ["whale shark"]),
    ("What is the largest living reptile?", ["saltwater crocodile", "estuarine crocodile",
                                             "crocodile"]),
    ("Which mammal is capable of true flight?", ["bat", "bats"]),
    ("What is the largest species of big cat?", ["tiger", "Siberian tiger", "Amur tiger"]),
    ("Which animal is known as the 'king of the jungle'?", ["lion"]),
    ("Which African animal has black and white stripes?", ["zebra"]),
    ("Which black-and-white bear eats mainly bamboo?", ["giant panda", "panda"]),
    ("Which Australian marsupial hops and carries its young in a pouch?", ["kangaroo", "wallaby"]),
    ("Which Australian marsupial eats eucalyptus leaves and sleeps most of the day?", ["koala"]),
    ("What is the largest primate?", ["gorilla", "eastern gorilla"]),
    ("What do caterpillars turn into?", ["butterflies", "butterfly", "moths", "moth"]),
    ("What do bees make from nectar?", ["honey"]),
    ("What fibre do silkworms produce?", ["silk"]),
    ("Which animal has a long trunk?", ["elephant"]),
    ("Which bird is a common symbol of peace?", ["dove", "white dove", "pigeon"]),
    ("What is the national bird of the United States?", ["bald eagle", "eagle"]),
    ("Which animal is known as the 'ship of the desert'?", ["camel"]),
    ("Which reptile can change colour and has eyes that move independently?", ["chameleon"]),
    ("Which animal builds dams across rivers?", ["beaver", "beavers"]),
    ("What do giant pandas mainly eat?", ["bamboo"]),
    ("What do koalas mainly eat?", ["eucalyptus", "eucalyptus leaves"]),
    ("Which sea creature has eight arms?", ["octopus"]),
    ("Which egg-laying mammal has a duck-like bill?", ["platypus", "duck-billed platypus"]),
    ("Which slow-moving mammal hangs upside down in rainforest trees?", ["sloth"]),
    ("What are animals that eat only plants called?", ["herbivores", "herbivore"]),
    ("What are animals that eat only meat called?", ["carnivores", "carnivore"]),
    ("What are animals that eat both plants and meat called?", ["omnivores", "omnivore"]),
    ("Which flower is strongly associated with the Netherlands?", ["tulip", "tulips"]),
    ("What fruit is dried to make raisins?", ["grapes", "grape"]),
    ("What fruit is dried to make prunes?", ["plums", "plum"]),
    ("Which nut is the main ingredient of marzipan?", ["almond", "almonds"]),
    ("What is the tallest species of tree in the world?", ["coast redwood", "redwood",
                                                          "Sequoia sempervirens"]),
    ("What do plants absorb through their roots?", ["water", "water and minerals", "nutrients"]),
    ("What gives most plants their green colour?", ["chlorophyll"]),
    ("Which part of a plant is usually underground and absorbs water?", ["roots", "root"]),
    ("Which bird lays the largest eggs?", ["ostrich"]),
    ("How many legs does a crab have, not counting its two claws?", num(8)),
    ("Which insect is known for glowing at night?", ["firefly", "fireflies", "lightning bug",
                                                     "glow-worm", "glowworm"]),
    ("What is a baby whale called?", ["calf"]),
    ("Which animal is the closest living relative of humans?", ["chimpanzee", "chimpanzees", "bonobo",
                                                                 "chimp", "chimps"]),
    ("Which striped big cat is the national animal of India?", ["tiger", "Bengal tiger"]),
    ("What is a male cow called?", ["bull"]), ("What is a female horse called?", ["mare"]),
    ("What is a male chicken called?", ["rooster", "cock", "cockerel"]),
    ("What is a female sheep called?", ["ewe"]), ("What is a male duck called?", ["drake"]),
    ("What is a female deer called?", ["doe", "hind"]), ("What is a female fox called?", ["vixen"]),
    ("Which tree produces acorns?", ["oak", "oak tree"]),
    ("Which tree's leaf appears on the flag of Canada?", ["maple", "maple tree", "sugar maple"]),
    ("What do you call a scientist who studies plants?", ["botanist"]),
    ("What do you call a scientist who studies animals?", ["zoologist"]),
    ("What do you call a scientist who studies birds?", ["ornithologist"]),
    ("What do you call a scientist who studies insects?", ["entomologist"]),
]


def _sound_forms(sounds: list[str]) -> list[str]:
    """Sound words plus their verb forms: "hiss" -> hiss, hisses, hissing."""
    out = []
    for w in sounds:
        if " " in w or "-" in w:
            out.append(w)
            continue
        third = w + ("es" if w.endswith(("s", "sh", "ch", "x", "z")) else "s")
        out += [w, third, w + "ing"]
    return out


def nature() -> list[tuple[str, list[str]]]:
    """Animals (young, sounds, groups, classes, records) and plants."""
    qs = [(f"What is the young of {article(a)} called?", y) for a, y in YOUNG]
    qs += [(f"What sound does {article(a)} make?", _sound_forms(s)) for a, s in SOUNDS]
    qs += [(f"What is a group of {a} called?", g) for a, g in GROUPS]
    qs += [(f"What type of animal is {article(a)}?", c) for a, c in ANIMAL_CLASS]
    return qs + NATURE_FACTS


# ---------------------------------------------------------------- general
COLOURS = [
    ("the sky on a clear day", ["blue", "light blue"]), ("grass", ["green"]),
    ("a ripe banana", ["yellow"]), ("fresh snow", ["white"]), ("blood", ["red"]), ("coal", ["black"]),
    ("a stop sign", ["red"]), ("an emerald", ["green"]), ("a ruby", ["red"]), ("a sapphire, most commonly",
                                                                              ["blue"]),
    ("a school bus in the United States", ["yellow"]),
    ("a flamingo", ["pink"]), ("a ripe tomato", ["red"]), ("a carrot", ["orange"]),
    ("milk", ["white"]), ("a lemon", ["yellow"]), ("an aubergine (eggplant) skin", ["purple"]),
]

MIXES = [("blue and yellow", ["green"]), ("red and white", ["pink"]), ("red and yellow", ["orange"]),
         ("blue and red", ["purple", "violet"]), ("black and white", ["grey", "gray"])]

SEQUENCE = [
    ("Which day of the week comes after Monday?", ["Tuesday"]),
    ("Which day of the week comes before Friday?", ["Thursday"]),
    ("Which day of the week comes after Saturday?", ["Sunday"]),
    ("Which month comes after January?", ["February"]),
    ("Which month comes before December?", ["November"]),
    ("What is the first month of the year?", ["January"]),
    ("What is the last month of the year?", ["December"]),
    ("In which month is Christmas Day?", ["December"]),
    ("In which month is Halloween?", ["October"]),
    ("In which month is Valentine's Day?", ["February"]),
    ("Which season comes after winter?", ["spring"]),
    ("Which season comes after summer?", ["autumn", "fall"]),
    ("Which season comes after spring?", ["summer"]),
    ("Which month has the fewest days?", ["February"]),
    ("Which holiday is celebrated on 25 December?", ["Christmas", "Christmas Day"]),
    ("Which holiday is celebrated on 31 October?", ["Halloween", "Hallowe'en"]),
    ("Which holiday is celebrated on 14 February?", ["Valentine's Day", "Saint Valentine's Day",
                                                     "Valentines Day", "St. Valentine's Day"]),
    ("Which US holiday is celebrated on 4 July?", ["Independence Day", "Fourth of July"]),
]

JOBS = [
    ("flies an aeroplane", ["pilot"]), ("treats sick animals", ["veterinarian", "vet", "veterinary surgeon"]),
    ("looks after people's teeth", ["dentist"]), ("cuts men's hair", ["barber", "hairdresser"]),
    ("bakes bread", ["baker"]), ("works in a library", ["librarian"]),
    ("puts out fires", ["firefighter", "fireman", "firemen", "firefighters"]),
    ("delivers letters", ["postman", "mail carrier", "mailman", "postal worker", "letter carrier",
                          "postwoman"]),
    ("designs buildings", ["architect"]), ("studies the stars and planets", ["astronomer"]),
    ("fixes pipes and taps", ["plumber"]), ("grows crops and raises animals", ["farmer"]),
    ("cooks in a restaurant", ["chef", "cook"]), ("makes furniture from wood", ["carpenter",
                                                                            "joiner", "woodworker"]),
    ("teaches children in a school", ["teacher", "schoolteacher"]),
    ("sells fresh meat", ["butcher"]), ("prepares and dispenses medicines", ["pharmacist", "chemist"]),
    ("represents clients in court", ["lawyer", "attorney", "barrister", "solicitor", "advocate"]),
]

HOMES = [("bee", ["hive", "beehive"]), ("bird", ["nest"]), ("spider", ["web", "cobweb"]),
         ("rabbit", ["burrow", "warren"]), ("dog", ["kennel", "doghouse"]), ("horse", ["stable"]),
         ("pig", ["sty", "pigsty", "pigpen"]), ("fox", ["den", "earth"]),
         ("beaver", ["lodge", "dam"])]

BODY = [
    ("see", ["eyes", "eye"]), ("hear", ["ears", "ear"]), ("smell", ["nose"]), ("taste", ["tongue"]),
    ("breathe", ["lungs", "lung"]), ("think", ["brain"]), ("pump blood", ["heart"]),
    ("digest food", ["stomach", "intestines", "gut"]),
]

GENERAL_FACTS = [
    ("What is frozen water called?", ["ice"]),
    ("What does a thermometer measure?", ["temperature"]),
    ("What tool is used to cut paper?", ["scissors"]),
    ("Which meal is eaten in the morning?", ["breakfast"]),
    ("What is the main ingredient of bread?", ["flour", "wheat", "wheat flour"]),
    ("What is the main ingredient of an omelette?", ["eggs", "egg"]),
    ("Which fruit is said to keep the doctor away if you eat one a day?", ["apple", "an apple"]),
    ("Which vegetable often makes people cry when they cut it?", ["onion", "onions"]),
    ("What is the main ingredient of guacamole?", ["avocado", "avocados"]),
    ("What hot drink is made from roasted beans?", ["coffee"]),
    ("What hot drink is made by soaking dried leaves of the Camellia sinensis plant?", ["tea"]),
    ("What drink do cows produce?", ["milk"]), ("What is cheese made from?", ["milk"]),
    ("On which planet do humans live?", ["Earth", "the Earth"]),
    ("What falls from clouds as liquid water?", ["rain", "raindrops"]),
    ("Which shape has three sides?", ["triangle"]), ("Which shape is perfectly round?", ["circle"]),
    ("What is the opposite direction to north?", ["south"]),
    ("In which direction does the Sun rise?", ["east"]), ("In which direction does the Sun set?", ["west"]),
    ("What is H2O commonly called?", ["water"]), ("What do people usually wear on their feet?",
                                                  ["shoes", "socks", "shoe"]),
    ("Who brings presents to children at Christmas in Western tradition?",
     ["Santa Claus", "Father Christmas", "Saint Nicholas", "Santa", "St. Nicholas"]),
    ("Which fruit is yellow and curved?", ["banana"]),
    ("What is the main ingredient of hummus?", ["chickpeas", "chickpea", "garbanzo beans"]),
    ("Which beans are used to make tofu?", ["soybeans", "soy", "soya", "soy beans", "soya beans"]),
    ("Which fruit is used to make cider?", ["apples", "apple"]),
    ("From which beans is chocolate made?", ["cocoa beans", "cocoa", "cacao", "cacao beans"]),
    ("Which vegetable is fermented to make sauerkraut?", ["cabbage"]),
    ("What grain is popcorn made from?", ["corn", "maize"]),
    ("Which country is the home of pizza?", ["Italy"]),
    ("Which country is the home of sushi?", ["Japan"]),
    ("Which Spanish rice dish is cooked in a wide shallow pan?", ["paella"]),
    ("What is the most expensive spice by weight?", ["saffron"]),
    ("What do you call a baby's bed with high sides?", ["cot", "crib"]),
    ("What device shows the time on your wrist?", ["watch", "wristwatch"]),
    ("What do you use to unlock a door?", ["key", "a key"]),
    ("What do you call the frozen dessert made from cream and sugar?", ["ice cream"]),
    ("Which insect is known for making honey?", ["bee", "honeybee", "honey bee", "bees"]),
    ("What do you call a person who writes books?", ["author", "writer", "novelist"]),
    ("What colour do you get when you mix all colours of light together?", ["white"]),
    ("What is the name for a period of ten years?", ["decade"]),
    ("What is the name for a period of one hundred years?", ["century"]),
    ("What is the name for a period of one thousand years?", ["millennium", "millenium"]),
    ("Which planet do we see as the Morning Star?", ["Venus"]),
    ("What is the name of the toy that is a flying frame covered with paper or cloth on a string?",
     ["kite"]),
    ("What do you call a vehicle with two wheels that you pedal?", ["bicycle", "bike"]),
    ("What do you call a flat piece of land surrounded by water?", ["island"]),
    ("What is the word for a large body of salt water smaller than an ocean?", ["sea"]),
    ("What is the largest organ inside the human body?", ["liver"]),
    ("Which sense do we use with our ears?", ["hearing"]),
    ("What do we call the meal eaten in the middle of the day?", ["lunch", "luncheon", "dinner"]),
    ("What do we call a young human between 13 and 19 years old?", ["teenager", "teen", "adolescent"]),
    ("What is the name of the famous clock tower bell at the Palace of Westminster?", ["Big Ben"]),
    ("What colour are the leaves of most plants in summer?", ["green"]),
]


def general() -> list[tuple[str, list[str]]]:
    """Everyday knowledge: colours, calendar, jobs, homes, body, food."""
    qs = [(f"What colour is {thing}?", c) for thing, c in COLOURS]
    qs += [(f"What colour do you get by mixing {pair} paint?", c) for pair, c in MIXES]
    qs += SEQUENCE
    qs += [(f"What do you call a person who {does}?", j) for does, j in JOBS]
    qs += [(f"What is the home of a {a} called?", h) for a, h in HOMES]
    qs += [(f"Which organ do humans use to {verb}?", o) for verb, o in BODY]
    return qs + GENERAL_FACTS


# category -> (id prefix, builder returning [(question, [answers...]), ...])
CATEGORIES = {
    "geography": ("geo", geography),
    "history": ("his", history),
    "sport": ("spo", sport),
    "literature": ("lit", literature),
    "arts": ("art", arts),
    "entertainment": ("ent", entertainment),
    "people": ("ppl", people),
    "science": ("sci", science),
    "numbers": ("num", numbers),
    "language": ("lan", language),
    "nature": ("nat", nature),
    "general": ("gen", general),
}


def _echoes(question: str, alias: str) -> bool:
    """True if ``alias`` appears as whole tokens inside ``question``."""
    q, a = normalize_tokens(question), normalize_tokens(alias)
    return bool(a) and any(q[i:i + len(a)] == a for i in range(len(q) - len(a) + 1))


def build() -> list[Question]:
    """All questions, validated: unique text, non-empty answers, no echoed alias.

    Raises:
        ValueError: listing every problem found.
    """
    out, seen, problems = [], set(), []
    for category, (prefix, builder) in CATEGORIES.items():
        for i, (question, answers) in enumerate(builder(), 1):
            if question in seen:
                problems.append(f"duplicate question {question!r}")
            seen.add(question)
            answers = list(dict.fromkeys(a.strip() for a in answers))
            echoed = [a for a in answers if _echoes(question, a)]
            if echoed:
                problems.append(f"{question!r}: aliases {echoed} appear in the question")
            out.append(Question(f"{prefix}-{i:04d}", question, tuple(answers), category))
    if problems:
        raise ValueError("\n".join(problems))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate only, do not write")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    questions = build()
    counts = Counter(q.category for q in questions)
    for category, n in counts.items():
        print(f"{category:14s} {n:5d}")
    print(f"{'total':14s} {len(questions):5d}")
    if not args.check:
        save_questions(questions, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
