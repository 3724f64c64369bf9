"""An adversarial set for acerto (issue 23): for each way the audit fooled the metric, Portuguese answers that must
be scored wrong, and answers of the same shape that must stay right.

The acceptance bar of the issue: at most 1 in 5 of the wrong answers scored correct, and the right answers stay
right. The kinds the rules still miss are listed in ``KNOWN_MISSES`` (and in docs/compare.md, "O que o acerto ainda
não detecta"); a test keeps that list honest (a listed miss that starts passing must leave the list).
"""

from __future__ import annotations

import pytest

from llamawiki import acerto as m
from llamawiki import matching as mt

# question key -> (pergunta, respostas_aceitas, minimo_fatos, respostas_erradas)
QUESTIONS = {
    "capital": ("Qual a capital do Brasil?", "Brasília", None, "Rio de Janeiro|Salvador|São Paulo"),
    "imperador": ("Quem foi o primeiro imperador do Brasil?", "Pedro I|Pedro Primeiro", None, "Pedro II|João VI"),
    "independencia": ("Em que ano o Brasil se tornou independente?", "1822", None, "1808|1889"),
    "pai": ("Quem foi o pai de Pedro I?", "João VI", None, "Pedro II|José I"),
    "aurea": ("Em que data foi assinada a Lei Áurea?", "13 de maio de 1888|1888", None, ""),
    "estados": ("Quantos estados tem o Brasil?", "26|vinte e seis", None, "27"),
    "gentilico": ("Como se chama quem nasce em Minas Gerais?", "mineiro", None, "paulista"),
    "constituicao": ("Em que data foi outorgada a Constituição de 1824?", "25 de março de 1824|1824", None, ""),
    "militares": (
        "Cite três presidentes do regime militar.",
        "Castelo Branco;Costa e Silva;Médici;Geisel;Figueiredo",
        3,
        "Getúlio Vargas|Juscelino Kubitschek",
    ),
    "republica": ("Em que ano foi proclamada a República no Brasil?", "1889", None, "1822|1891"),
    "tiradentes": ("Em que ano Tiradentes foi executado?", "1792", None, "1789"),
    "maior": ("Qual o maior estado do Brasil em área?", "Amazonas", None, "Pará|Mato Grosso"),
    "cabral": (
        "Quem comandou a frota que chegou ao Brasil em 1500?",
        "Pedro Álvares Cabral|Cabral",
        None,
        "Vasco da Gama",
    ),
    "pais": ("Quem eram os pais de D. Pedro I?", "João VI;Carlota Joaquina", None, "Maria I"),
    "poetas": (
        "Cite poetas que tomaram parte na Inconfidência Mineira.",
        "Tomás Antônio Gonzaga|Gonzaga;Cláudio Manuel da Costa;Alvarenga Peixoto",
        1,
        "Castro Alves|Gonçalves Dias",
    ),
    "vargas": ("Quantos anos seguidos durou a primeira fase do governo Vargas?", "15 anos", None, "20 anos"),
    "censo": ("Quantos habitantes o censo de 2022 contou no Brasil?", "203 milhões", None, "213 milhões"),
    "coracao": ("Em que cidade está guardado o coração de D. Pedro I?", "Porto", None, "Lisboa|Porto Alegre"),
    "arquipelagos": (
        "Que arquipélagos fazem parte do território português?",
        "Açores;Madeira",
        None,
        "Cabo Verde|Canárias",
    ),
    "novacap": ("Que empresa pública foi criada em 1956 para tocar as obras da nova capital?", "Novacap", None, ""),
    "fronteira": (
        "Com quais países sul-americanos o Brasil não tem fronteira?",
        "Chile;Equador",
        None,
        "Argentina|Uruguai|Bolívia|Peru",
    ),
    "novarepublica": ("Em que ano começou a Nova República?", "1985", None, ""),
    "estadonovo": ("Em que ano terminou o Estado Novo?", "1945", None, ""),
    "junta": ("Por quanto tempo uma junta militar governou o país em 1969?", "dois meses|2 meses", None, ""),
    "documento": (
        "Que documento os paulistas exigiam do Governo Provisório em 1932?",
        "constituição|carta constitucional",
        None,
        "",
    ),
    "niemeyer": ("Com quantos anos faleceu Oscar Niemeyer?", "104 anos", None, "105 anos"),
    "reinado": ("Quantos anos durou o reinado de Pedro II, contando a menoridade?", "58 anos", None, "49 anos"),
}

# (kind, question key, answer, label): label 1 = a reader would know the right answer (docs/compare.md, "Rótulos à
# mão"), 0 = not.
CASES = [
    # ---- negation
    ("negacao", "capital", "A capital não é Brasília, é o Rio de Janeiro.", 0),
    ("negacao", "capital", "Brasília não é a capital do Brasil; a capital é o Rio de Janeiro.", 0),
    ("negacao", "imperador", "O primeiro imperador não foi Pedro I, e sim Pedro II.", 0),
    ("negacao", "independencia", "A independência não aconteceu em 1822, mas em 1808.", 0),
    ("negacao", "cabral", "Não foi Cabral quem comandou a frota, foi Vasco da Gama.", 0),
    ("negacao", "maior", "Nunca foi o Amazonas; o maior estado é o Pará.", 0),
    ("negacao", "republica", "A República não foi proclamada em 1889.", 0),
    ("negacao", "imperador", "Não foi Pedro II, foi Pedro I.", 1),
    ("negacao", "capital", "Brasília, não o Rio.", 1),
    ("negacao", "capital", "A capital não é mais o Rio de Janeiro: desde 1960 é Brasília.", 1),
    ("negacao", "capital", "Ao contrário do que muitos pensam, a capital não é São Paulo nem o Rio: é Brasília.", 1),
    ("negacao", "maior", "O maior estado em área é o Amazonas, e não o Pará.", 1),
    ("negacao", "cabral", "Pedro Álvares Cabral, e não Vasco da Gama, que já tinha ido à Índia.", 1),
    # ---- hedges between candidates
    ("hesitacao", "capital", "Pode ser Rio de Janeiro, São Paulo ou Brasília.", 0),
    ("hesitacao", "imperador", "Talvez Pedro I ou Pedro II.", 0),
    ("hesitacao", "independencia", "Foi em 1822 ou em 1889, não tenho certeza.", 0),
    ("hesitacao", "cabral", "A frota era de Cabral ou de Vasco da Gama.", 0),
    ("hesitacao", "maior", "Amazonas ou Mato Grosso, um dos dois.", 0),
    ("hesitacao", "imperador", "Pedro I, Pedro II ou João VI.", 0),
    ("hesitacao", "gentilico", "Quem nasce lá é chamado de mineiro ou de paulista.", 0),
    ("hesitacao", "capital", "Brasília, ou seja, a cidade planejada por Lúcio Costa.", 1),
    ("hesitacao", "imperador", "Pedro I (ou Pedro Primeiro), filho de João VI.", 1),
    ("hesitacao", "imperador", "O primeiro imperador foi Pedro I, ou D. Pedro I, como era chamado.", 1),
    # ---- enumerations and lists
    ("lista", "capital", "Rio de Janeiro, São Paulo, Brasília, Salvador e Recife.", 0),
    ("lista", "maior", "Os estados do Norte são Acre, Amapá, Amazonas, Pará, Rondônia, Roraima e Tocantins.", 0),
    ("lista", "imperador", "1. Pedro I\n2. Pedro II\n3. João VI", 0),
    ("lista", "independencia", "- 1808\n- 1815\n- 1822\n- 1889", 0),
    ("lista", "militares", "Castelo Branco, Costa e Silva, Médici, Getúlio Vargas e Juscelino Kubitschek.", 0),
    ("lista", "militares", "Castelo Branco e Geisel.", 0),
    ("lista", "militares", "Castelo Branco, Costa e Silva, Médici, Geisel e Figueiredo.", 1),
    (
        "lista",
        "militares",
        "Os presidentes do regime militar foram Castelo Branco, Costa e Silva e Médici, entre outros.",
        1,
    ),
    ("lista", "capital", "Brasília, no Planalto Central, inaugurada em 1960.", 1),
    ("lista", "maior", "O Amazonas, seguido do Pará e de Mato Grosso.", 1),
    # ---- the fact only in an echoed prompt, or in a question
    (
        "eco",
        "imperador",
        "### Input: Quem foi o pai de Pedro I? ### Response: O primeiro imperador do Brasil foi D. João VI.",
        0,
    ),
    (
        "eco",
        "capital",
        "### Instruction: Responda em português. ### Input: A capital é Brasília? ### Response: Rio.",
        0,
    ),
    ("eco", "independencia", "Contexto: O Brasil declarou independência em 1822.\nResposta: Em 1815.", 0),
    ("eco", "capital", "Qual a capital do Brasil, Brasília ou o Rio de Janeiro?", 0),
    ("eco", "imperador", "Você quer saber se foi Pedro I?", 0),
    ("eco", "constituicao", "A Constituição brasileira de 1824 foi assinada em 24 de fevereiro de 1891.", 0),
    ("eco", "imperador", "### Input: Quem foi o primeiro imperador do Brasil? ### Response: Pedro I.", 1),
    ("eco", "capital", "Qual a capital do Brasil? A capital do Brasil é Brasília.", 1),
    ("eco", "constituicao", "A Constituição de 1824 foi outorgada em 25 de março de 1824.", 1),
    # ---- the fact mentioned in passing; another candidate asserted
    ("passagem", "imperador", "O primeiro imperador foi Pedro II, filho de Pedro I.", 0),
    ("passagem", "pai", "O pai de Pedro I foi D. Miguel, irmão de João VI.", 0),
    (
        "passagem",
        "capital",
        "A capital do Brasil é o Rio de Janeiro, sucessor de Salvador e antecessor de Brasília.",
        0,
    ),
    (
        "passagem",
        "cabral",
        "A frota foi comandada por Vasco da Gama, que abriu o caminho para Pedro Álvares Cabral.",
        0,
    ),
    ("passagem", "republica", "A República foi proclamada em 1891, dois anos depois de 1889.", 0),
    ("passagem", "maior", "O maior estado é o Pará, vizinho do Amazonas.", 0),
    ("passagem", "imperador", "Foi Pedro I, filho de João VI.", 1),
    ("passagem", "pai", "João VI, pai de Pedro I e de Miguel.", 1),
    ("passagem", "capital", "A capital é Brasília. Antes, a capital era o Rio de Janeiro.", 1),
    (
        "passagem",
        "independencia",
        "O Brasil se tornou independente em 1822, depois da chegada da corte em 1808 e antes da República em 1889.",
        1,
    ),
    # ---- long answers full of years
    (
        "anos",
        "republica",
        "O Brasil teve muitos marcos: em 1500 chegaram os portugueses, em 1808 veio a família real, em 1888 a "
        "abolição e em 1889 aconteceu algo importante.",
        0,
    ),
    ("anos", "independencia", "Datas importantes: 1500, 1530, 1549, 1808, 1822, 1889.", 0),
    ("anos", "republica", "O Império durou de 1822 a 1889, com a abdicação em 1831 e a maioridade em 1840.", 0),
    (
        "anos",
        "independencia",
        "A história do país: em 1500 a chegada de Cabral; em 1534 as capitanias; em 1549 o governo-geral; em 1763 "
        "a capital no Rio; em 1822 a coroação; em 1888 a abolição.",
        0,
    ),
    (
        "anos",
        "independencia",
        "Em 1808 chegou a corte, em 1815 veio o Reino Unido e a independência veio em 1822, seguida da abdicação "
        "em 1831.",
        1,
    ),
    ("anos", "republica", "A República foi proclamada em 15 de novembro de 1889.", 1),
    # ---- wrong dates with the right year, and the parsing bugs
    ("data", "aurea", "A Lei Áurea foi assinada em 13 de junho de 1888.", 0),
    ("data", "aurea", "Foi assinada em 1º de maio de 1888.", 0),
    ("data", "constituicao", "Em 25 de abril de 1824.", 0),
    ("data", "estados", "O Brasil tem entre dez e dezesseis estados.", 0),
    ("data", "aurea", "Em 13/05/1888.", 1),
    ("data", "aurea", "13.05.1888", 1),
    ("data", "aurea", "A Lei Áurea foi assinada pela princesa Isabel em 1888, no dia 13 de maio.", 1),
    ("data", "imperador", "D. Pedro 1º.", 1),
    ("data", "estados", "São vinte e seis estados e o Distrito Federal.", 1),
    # ---- inflections of an accepted adjective or demonym
    ("flexao", "gentilico", "Os nascidos em Minas Gerais são os mineiros.", 1),
    ("flexao", "gentilico", "Uma pessoa nascida lá é mineira.", 1),
    ("flexao", "gentilico", "São chamados de paulistas.", 0),
]

# Written after the rules of the second pass (mixed lists, alternatives, English): the same two sides.
CASES += [
    # ---- a list that mixes the facts with wrong entries, and lists of alternatives
    (
        "lista",
        "pais",
        "Os pais de D. Pedro I eram João VI de Portugal, Maria Leopoldina, Carlota Joaquina e Pedro Afonso.",
        0,
    ),
    ("lista", "poetas", "Foram José de Alvarenga Peixoto e Antônio de Pádua.", 0),
    ("lista", "poetas", "Participaram Tomás Antônio Gonzaga, Castro Alves e Gonçalves Dias.", 0),
    (
        "lista",
        "militares",
        "1. Castelo Branco, Costa e Silva, Médici, Geisel e Figueiredo. 2. Tancredo Neves, José Sarney e Fernando "
        "Collor de Mello. 3. Itamar Franco, Fernando Henrique e Lula.",
        0,
    ),
    ("lista", "pais", "Os pais de D. Pedro I eram João VI de Portugal e Carlota Joaquina de Bourbon.", 1),
    ("lista", "poetas", "Os poetas foram Tomás Antônio Gonzaga, Cláudio Manuel da Costa e Alvarenga Peixoto.", 1),
    ("lista", "poetas", "José de Alvarenga Peixoto, autor de poemas árcades, esteve entre os inconfidentes.", 1),
    # ---- a duration stated as a range of years (both labellers count "de 1930 a 1945" as "15 anos")
    ("data", "vargas", "A primeira fase do governo Vargas foi de 1930 a 1945.", 1),
    ("data", "vargas", "A resposta é: 1930–1945.", 1),
    ("data", "vargas", "Durou de 1930 a 1950.", 0),
    ("data", "vargas", "Foram 20 anos, de 1925 a 1945.", 0),
    # ---- answers in English (the study's Llama 2 answers in English more often than not)
    ("ingles", "capital", "The capital of Brazil is not Brasília, it is Rio de Janeiro.", 0),
    ("ingles", "capital", "It could be Rio de Janeiro, São Paulo or Brasília.", 0),
    ("ingles", "maior", "Amazonas isn't the largest state; it's Mato Grosso.", 0),
    ("ingles", "independencia", "Brazil didn't become independent in 1822.", 0),
    ("ingles", "capital", "I am not sure, perhaps Brasília.", 0),
    ("ingles", "imperador", "The first emperor was Pedro II, son of Pedro I.", 0),
    ("ingles", "aurea", "The Golden Law was signed on June 13, 1888.", 0),
    ("ingles", "censo", "The 2022 census counted about 213 million people.", 0),
    ("ingles", "capital", "The capital of Brazil is Brasília.", 1),
    ("ingles", "aurea", "The Golden Law was signed on May 13, 1888.", 1),
    ("ingles", "aurea", "It was signed on the 13th of May 1888 by Princess Isabel.", 1),
    ("ingles", "censo", "The population of the country is 203 million.", 1),
    ("ingles", "imperador", "Pedro I was the first emperor of Brazil, not Pedro II.", 1),
]

# Found by the third label set (data/rotulos-sementes.csv, answers of the seed adapters), written after it: a
# statement that restates the question with the answer in it, a count in digits, and a name inside a longer one.
CASES += [
    ("eco", "novacap", "A empresa pública criada em 1956 para tocar as obras da nova capital foi a Novacap.", 1),
    ("eco", "novacap", "Que empresa pública foi criada em 1956 para tocar as obras da nova capital", 0),
    ("data", "censo", "O censo de 2022 contou 203 080 756 habitantes.", 1),
    ("data", "censo", "Censo de 2022: 203.080.756 pessoas.", 1),
    ("data", "censo", "O censo contou 213.445.417 pessoas.", 0),
    ("nome", "coracao", "O coração de D. Pedro I está guardado em Porto Alegre.", 0),
    ("nome", "coracao", "Está guardado no Porto, na igreja da Lapa.", 1),
    # a name asked: another name after "é/foi", in a clause that says what is asked, is another answer, listed or
    # not (amostragem a021 "é o D. Pedro II, o Conde d'Eu"; densa a187 "é a Caixa Econômica Federal"); a title
    # alone is a role, and a name that holds the fact or a word of the question is not another
    ("nome", "cabral", "Quem comandou a frota foi Bartolomeu Dias, e Pedro Álvares Cabral veio depois.", 0),
    ("nome", "pai", "O pai de Pedro I foi o Marquês de Pombal, ministro de João VI.", 0),
    ("nome", "cabral", "O comandante da frota que chegou ao Brasil em 1500 foi Dom Pedro Álvares Cabral.", 1),
    ("nome", "pai", "O pai de Pedro I era o Príncipe Regente, que depois seria João VI.", 1),
    ("nome", "novacap", "A empresa criada em 1956 foi a Companhia Urbanizadora da Nova Capital (Novacap).", 1),
    (
        "nome",
        "documento",
        "O documento que os paulistas exigiam era o Decreto de 4 de outubro, que citava a constituição.",
        0,
    ),
    (
        "nome",
        "documento",
        "O documento que os paulistas exigiam era uma nova Constituição, votada por uma Constituinte.",
        1,
    ),
    ("nome", "documento", "O documento que exigiam era a Constituição.", 1),
    # an exception takes the other side of its sentence ("não … exceto X" says X has a border)
    ("negacao", "fronteira", "O Brasil não tem fronteira com os países sul-americanos, exceto o Chile e o Equador.", 0),
    (
        "negacao",
        "fronteira",
        "O Brasil faz fronteira com todos os países sul-americanos, exceto o Chile e o Equador.",
        1,
    ),
    ("negacao", "capital", "Todas as cidades foram capitais, exceto Brasília.", 0),
    ("negacao", "maior", "Nenhum estado é maior que os outros, salvo o Amazonas.", 1),
    # a year asked, and another year said of the same thing: two answers
    ("anos", "independencia", "O Brasil ficou independente em 1815, no Rio, e em 1822, em São Paulo.", 0),
    ("anos", "republica", "A República foi proclamada em 1889 no Rio e foi proclamada em 1890 em São Paulo.", 0),
    ("anos", "independencia", "A independência foi proclamada em 1822 e reconhecida por Portugal em 1825.", 1),
]

# Found by the fourth label set (data/rotulos-amostragem.csv, answers sampled at temperature 0.7), written after it:
# the answer after an echoed question on the same line, a list of "dos X, da Y" items, a list of other counts.
CASES += [
    ("eco", "capital", "Question: What is the capital of Brazil? The capital of Brazil is Brasília.", 1),
    ("eco", "capital", "Question: Is the capital Brasília? It is Rio de Janeiro.", 0),
    (
        "lista",
        "arquipelagos",
        "Portugal inclui os arquipélagos dos Açores, da Madeira, do Cabo Verde e das Canárias.",
        0,
    ),
    ("lista", "arquipelagos", "Fazem parte do território português os arquipélagos dos Açores e da Madeira.", 1),
    (
        "lista",
        "censo",
        "1. The census counted 203 million people. 2. The census counted 213 million people. 3. It counted 190 "
        "million people.",
        0,
    ),
    ("lista", "censo", "1. The census was taken in 2022. 2. It counted 203 million people. 3. It came after 2010.", 1),
]

# Written after the four label sets and before the fifth (data/rotulos-amostragem-s7.csv,
# data/rotulos-bm25.csv): the year of another period's
# bound, a list spread over sentences of one frame, another length of time said of what is asked.
CASES += [
    ("passagem", "novarepublica", "O período da ditadura militar (1964–1985) foi marcado pela censura.", 0),
    ("passagem", "novarepublica", "A Nova República (1985–2024) começou com José Sarney.", 1),
    ("passagem", "novarepublica", "A Nova República começou em 1985, depois da ditadura (1964–1985).", 1),
    ("passagem", "estadonovo", "O governo democrático (1945–1964) sucedeu o Estado Novo.", 0),
    ("passagem", "estadonovo", "O Estado Novo (1937–1945) terminou com a deposição de Vargas.", 1),
    ("lista", "maior", "O maior estado é o Acre. O maior estado é o Amazonas. O maior estado é Roraima.", 0),
    (
        "lista",
        "maior",
        "O maior estado é o Amazonas. O maior estado tem 1,5 milhão de km². O maior estado fica no Norte.",
        1,
    ),
    ("lista", "maior", "O maior estado é o Amazonas. O maior estado é o Amazonas. O maior estado é o Amazonas.", 1),
    ("anos", "junta", "A junta militar governou o país de 1964 a 1985, e depois governou por dois meses.", 0),
    ("anos", "vargas", "A primeira fase do governo Vargas durou 15 anos; o governo Vargas durou de 1930 a 1954.", 0),
    (
        "anos",
        "junta",
        "A junta militar governou o país por dois meses, de agosto a outubro de 1969, durante a ditadura (1964-1985).",
        1,
    ),
    ("anos", "vargas", "A primeira fase do governo Vargas durou 15 anos, de 1930 a 1945.", 1),
    ("anos", "reinado", "O reinado de Pedro II durou 58 anos. Sem a menoridade, o reinado durou 49 anos.", 1),
    # bare numbers in a parenthesis right after the fact qualify it: another length there contradicts it (amostragem
    # a086); the same length, or a life after a name, does not
    ("anos", "reinado", "O reinado de Pedro II durou 58 anos (1822 a 1889; 34 anos), contando a menoridade.", 0),
    ("anos", "reinado", "O reinado de Pedro II durou 58 anos (1831 a 1889), contando a menoridade.", 1),
    ("anos", "reinado", "Pedro II (1825–1891) reinou por 58 anos, contando a menoridade.", 1),
    # a date asked: another whole date said of what is asked is a second answer (bm25 a131); a bare year in a name
    # ("a Constituição de 1824") or a date said of something else is not
    ("anos", "aurea", "A Lei Áurea, de 13 de maio de 1888, foi assinada em 28 de setembro de 1871.", 0),
    ("anos", "aurea", "A Lei Áurea, de 13 de maio de 1888, foi assinada em 1889.", 0),  # k1 a097
    # a range of years gives a length only to within a year (k1 a049): a year off is no other length; more is
    ("anos", "niemeyer", "Oscar Niemeyer (1907 – 2012) faleceu com 104 anos.", 1),
    ("anos", "niemeyer", "Oscar Niemeyer faleceu com 104 anos; Niemeyer viveu de 1907 a 2017.", 0),
    ("anos", "aurea", "Assinada em 13 de maio de 1888, a Lei Áurea veio depois da Lei dos Sexagenários, de 1885.", 1),
    (
        "anos",
        "aurea",
        "A Lei Áurea foi assinada em 13 de maio de 1888; a Lei do Ventre Livre, em 28 de setembro de 1871.",
        1,
    ),
    ("anos", "constituicao", "A Constituição de 1824 foi outorgada em 25 de março de 1824, depois da de 1823.", 1),
    (
        "anos",
        "aurea",
        "A Lei Áurea foi assinada em 13 de maio de 1888 pela princesa Isabel, que assinara a Lei do Ventre Livre em 28"
        " de setembro de 1871.",
        1,
    ),
]

# Found by the fifth label sets (data/rotulos-bm25.csv, greedy answers over a BM25 index), written after them: a
# numbered list that names the fact in more entries among other names, one other name said again and again in
# sentences of the fact's frame. (The lightly edited paste needs the context: tests/test_acerto.py.)
CASES += [
    ("lista", "cabral", "1. Pedro Álvares Cabral 2. Bartolomeu Dias 3. Nicolau Coelho 4. Pedro Álvares Cabral", 0),
    ("lista", "cabral", "1. Pedro Álvares Cabral 2. Pedro Álvares Cabral, em 1500 3. Cabral, o comandante", 1),
    (
        "lista",
        "novacap",
        "A empresa criada para as obras foi a Novacap. A empresa criada para as obras foi a Terracap. A empresa "
        "criada para as obras foi a Terracap.",
        0,
    ),
    (
        "lista",
        "novacap",
        "A empresa criada para as obras foi a Novacap. A empresa criada para as obras foi a Novacap.",
        1,
    ),
]

# Written in the sixth session, before the sixth label set (data/rotulos-densa.csv) was read: a list written one
# name per line (a known miss until then), and a listed wrong candidate that the answer dates to another year than
# the one the question fixes, while it dates the fact to that year, and says less of the question of it.
CASES += [
    (
        "lista",
        "pais",
        "João VI de Portugal (1767 – 1826)\nCarlota Joaquina (1775 – 1830)\nPedro II (1825 – 1891)\n"
        "Maria Amélia (1831 – 1853)",
        0,
    ),
    ("lista", "cabral", "Pedro Álvares Cabral\nBartolomeu Dias\nNicolau Coelho\nDuarte Pacheco Pereira", 0),
    ("lista", "pais", "Os pais de D. Pedro I eram:\nJoão VI\nCarlota Joaquina", 1),
    ("lista", "pais", "João VI\nCarlota Joaquina\nEles se casaram em Lisboa em 1785.", 1),
    ("lista", "militares", "Castelo Branco\nCosta e Silva\nMédici", 1),
    ("passagem", "cabral", "Pedro Álvares Cabral comandou a frota em 1500. Vasco da Gama chegou à Índia em 1498.", 1),
    (
        "passagem",
        "cabral",
        "Pedro Álvares Cabral chegou em 1500. Vasco da Gama comandou a frota que chegou ao Brasil em 1498.",
        0,
    ),
    ("passagem", "cabral", "Vasco da Gama comandou a frota que chegou ao Brasil em 1498; Cabral veio depois.", 0),
]

# Found by the sixth label set (data/rotulos-densa.csv), written after it: the question restated, with no "?",
# and the answer added ("Com quem D. Pedro I se casou pela primeira vez foi Leopoldina.") is an answer.
CASES += [
    ("eco", "cabral", "Quem comandou a frota que chegou ao Brasil em 1500 foi Cabral.", 1),
    ("eco", "cabral", "Quem comandou a frota que chegou ao Brasil em 1500 foi Vasco da Gama ou Cabral.", 0),
    # a "Título — Seção" line heading some text names a passage, pasted or made up, and states nothing (bm25 a022)
    ("eco", "imperador", "Pedro I do Brasil — Reinado\nO reinado começou em 1822 e terminou com a abdicação.", 0),
    ("eco", "imperador", "Brasil — Império\nO primeiro imperador foi Pedro I, coroado em 1822.", 1),
    ("eco", "imperador", "Pedro I — o primeiro imperador", 1),
    # a made-up exchange after the question is asked and answered (amostragem-s7 a112): the fact answers another
    # question; a rewording of ours, or its translation, right after it is still ours
    (
        "eco",
        "capital",
        "Pergunta (1): Qual a capital do Brasil?\nResposta (2): Goiânia.\n"
        "Pergunta (3): Qual cidade foi planejada por Lúcio Costa?\nResposta (4): Brasília.",
        0,
    ),
    ("eco", "capital", "Qual a capital do Brasil? Que cidade é a sede do governo federal? Brasília.", 1),
    ("eco", "capital", "Qual a capital do Brasil? What is the capital of Brazil? Brasília.", 1),
    ("eco", "capital", "Qual a capital do Brasil? Brasília. Qual cidade ela substituiu? O Rio de Janeiro.", 1),
]

# What the rules still get wrong, said plainly in docs/compare.md ("O que o acerto ainda não detecta"): found by a
# second set written after the rules and not tuned to.
CASES += [
    ("negacao", "capital", "Muita gente acha que é Brasília, mas na verdade é o Rio de Janeiro.", 0),  # correction
    ("hesitacao", "independencia", "Não sei dizer se foi em 1822.", 0),  # uncertainty without an alternative
    ("passagem", "tiradentes", "Ele foi preso em 1789 e executado em 1792.", 1),  # a wrong candidate in another role
    # from the third label set: the fact named in a sentence about something else
    ("passagem", "cabral", "Pedro Álvares Cabral estudou em Lisboa. A frota chegou à Bahia em abril.", 0),
]
# (kind, answer) of the wrong answers the rules still score correct
KNOWN_MISSES: set[tuple[str, str]] = {
    ("negacao", "Muita gente acha que é Brasília, mas na verdade é o Rio de Janeiro."),
    ("hesitacao", "Não sei dizer se foi em 1822."),
    ("ingles", "I am not sure, perhaps Brasília."),  # the same uncertainty without an alternative, in English
    ("passagem", "Pedro Álvares Cabral estudou em Lisboa. A frota chegou à Bahia em abril."),
}
# (kind, answer) of the right answers the rules still score wrong
KNOWN_FALSE_ERRORS: set[tuple[str, str]] = {
    ("passagem", "Ele foi preso em 1789 e executado em 1792."),
    # another length said of the question, of another span of it: "sem a menoridade" takes no part in the rules
    ("anos", "O reinado de Pedro II durou 58 anos. Sem a menoridade, o reinado durou 49 anos."),
    # the other date is said of another law, with a verb of the question: the rule reads the verb, not the law
    (
        "anos",
        "A Lei Áurea foi assinada em 13 de maio de 1888 pela princesa Isabel, que assinara a Lei do Ventre Livre em 28"
        " de setembro de 1871.",
    ),
}


def verdict(key: str, answer: str) -> m.Verdict:
    pergunta, accepted, minimum, wrong = QUESTIONS[key]
    return m.judge_acerto(
        answer, mt.AcceptedAnswers.parse(accepted, minimum), [w for w in wrong.split("|") if w], question=pergunta
    )


@pytest.mark.parametrize("kind,key,answer,label", [c for c in CASES if c[3] == 1])
def test_right_answers_stay_right(kind, key, answer, label):
    v = verdict(key, answer)
    if (kind, answer) in KNOWN_FALSE_ERRORS:
        assert not v.correct, f"{answer!r} is now right: take it out of KNOWN_FALSE_ERRORS and docs/compare.md"
    else:
        assert v.correct, (kind, answer, v)


@pytest.mark.parametrize("kind,key,answer,label", [c for c in CASES if c[3] == 0])
def test_wrong_answers_are_wrong(kind, key, answer, label):
    v = verdict(key, answer)
    if (kind, answer) in KNOWN_MISSES:
        assert v.correct, f"{answer!r} is now caught ({v.check}): take it out of KNOWN_MISSES and docs/compare.md"
    else:
        assert not v.correct, (kind, answer, v)


def test_the_issue_bar_at_most_one_in_five_wrong_answers_scored_correct_and_right_answers_stay_right():
    wrong = [c for c in CASES if c[3] == 0]
    fooled = [c for c in wrong if verdict(c[1], c[2]).correct]
    assert len(fooled) * 5 <= len(wrong)
    for kind in {c[0] for c in wrong}:  # and per kind
        of_kind = [c for c in wrong if c[0] == kind]
        assert sum(c in fooled for c in of_kind) * 5 <= len(of_kind), kind
    right = [c for c in CASES if c[3] == 1]
    assert sum(not verdict(c[1], c[2]).correct for c in right) == len(KNOWN_FALSE_ERRORS)


def test_every_kind_has_right_and_wrong_answers():
    for kind in {c[0] for c in CASES}:
        assert {c[3] for c in CASES if c[0] == kind} == {0, 1}, kind


def test_a_numbered_list_of_names_for_one_fact_is_no_choice():
    # found in the hand labels (avaliacao a046): the fact is one entry of an enumeration of other people
    from llamawiki.acerto import judge_acerto
    from llamawiki.matching import AcceptedAnswers

    accepted = AcceptedAnswers.parse("Goulart|Jango")
    question = "Quem foi o vice-presidente de Juscelino?"
    listed = "1. Juscelino Kubitschek 2. João Goulart 3. Nereu Ramos 4. Jânio Quadros 5. Jânio Quadros"
    v = judge_acerto(listed, accepted, question=question)
    assert (v.correct, v.check) == (False, "lista"), v
    # a numbered answer whose other entries are details, not names, still states the fact
    detailed = "1. Foi João Goulart. 2. Eleito em 1955 na chapa de Juscelino. 3. Assumiu a presidência em 1961."
    v = judge_acerto(detailed, accepted, question=question)
    assert (v.correct, v.check) == (True, "fato"), v
    # and a repeated name is one entry, not a list of candidates
    v = judge_acerto("1. João Goulart 2. João Goulart 3. João Goulart", accepted, question=question)
    assert v.correct, v


def test_a_multiple_choice_list_without_a_choice_is_a_list():
    # found in the hand labels (avaliacao a107, a094): lettered options, the fact one of them, none chosen
    from llamawiki.acerto import judge_acerto
    from llamawiki.matching import AcceptedAnswers

    accepted = AcceptedAnswers.parse("José Sarney|Sarney")
    question = "Quem foi o primeiro civil a governar depois da ditadura?"
    options = "The answer is: a. Tancredo Neves b. José Sarney c. Paulo Maluf d. João Goulart"
    v = judge_acerto(options, accepted, question=question)
    assert (v.correct, v.check) == (False, "lista"), v
    v = judge_acerto("a) Rio de Janeiro b) Salvador c) José Sarney", accepted, question=question)
    assert (v.correct, v.check) == (False, "lista"), v
    # the options, then a choice said outside them: a choice
    chosen = "Há três nomes possíveis: a) Tancredo Neves b) Ulysses Guimarães c) José Sarney. Foi José Sarney."
    assert judge_acerto(chosen, accepted, question=question).correct
    # two lettered markers are not a list of options ("a) …" alone is a label)
    assert judge_acerto("A resposta é a) José Sarney.", accepted, question=question).correct
