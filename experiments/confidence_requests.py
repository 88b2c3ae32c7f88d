"""Requests for calibrating the low-confidence signal (``experiments/calibrate_confidence.py``).

English music requests come from the data (LP-MusicCaps-MC rephrased requests) and from the short list
below; the negatives are written here (non-English music requests, emoji-only requests) or generated
(gibberish, seeded). ``OFF_TOPIC`` (English, not about music) is reported but not calibrated on.
"""

from __future__ import annotations

import random

#: Short English music requests, as people type them.
SHORT_ENGLISH = [
    "sad piano", "upbeat tropical music with steel drums", "relaxing ambient music for sleeping", "heavy metal",
    "smooth jazz with saxophone", "old school hip hop", "epic orchestral soundtrack", "acoustic folk guitar",
    "dark techno", "happy pop song with female vocals", "lofi beats to study to", "country music with banjo",
    "classical violin", "reggae", "something energetic for the gym", "calm music for a rainy day",
    "romantic love song", "electronic dance music", "a bluesy guitar solo", "children's song",
    "music for a party", "slow emotional ballad", "funky bass line", "latin music with percussion",
    "choir singing in a church", "punk rock with fast drums", "meditation music with flute",
    "retro 80s synthwave", "a lullaby", "jazz trio with upright bass", "songs with a male rapper",
    "Christmas music", "drum and bass", "soft rock from the seventies", "music with bagpipes",
    "I want something mellow with strings", "play me some chill electronic music", "a marching band",
    "opera singer", "instrumental hip hop beat",
    "songs for a road trip", "quiet background music for work", "a fast electric guitar riff", "sad violin music",
    "cheerful ukulele song", "deep house", "gospel choir", "traditional irish folk music with fiddle",
    "ambient drone", "movie trailer music", "a cappella singing", "indian classical music with sitar",
    "bossa nova", "tango", "ska with horns", "grunge", "techno with a heavy kick drum", "mellow acoustic covers",
    "upbeat ukulele and whistling", "dreamy shoegaze", "video game music", "hard rock with screaming vocals",
    "a slow waltz", "music for a horror movie", "spanish guitar", "a romantic piano melody",
    "energetic workout playlist", "peaceful nature sounds with music", "trap beat with 808s", "smooth r&b",
    "baroque harpsichord", "a brass band", "kids singing", "cinematic strings", "uplifting trance",
    "a drum solo", "calm harp music", "heavy dubstep bass", "vintage soul with organ", "an accordion waltz",
]

#: Music requests in 20 other languages (French, German, Spanish, Italian, Portuguese, Dutch, Polish, Turkish,
#: Russian, Greek, Arabic, Hebrew, Hindi, Chinese, Japanese, Korean, Thai, Vietnamese, Indonesian, Swahili).
NON_ENGLISH = [
    "musique calme pour dormir", "une chanson triste avec du piano", "je cherche de la musique joyeuse pour danser",
    "chanson d'amour avec une voix douce", "musique de fête entraînante",
    "ruhige Musik zum Einschlafen", "ein trauriges Lied mit Klavier", "fröhliche Musik zum Tanzen",
    "Musik mit einer weiblichen Stimme und Gitarre", "laute Musik für das Fitnessstudio",
    "música tranquila para dormir", "una canción triste con piano", "quiero música alegre para bailar",
    "canciones de amor con voz suave", "música para una fiesta en la playa",
    "musica tranquilla per dormire", "una canzone triste con il pianoforte", "voglio musica allegra per ballare",
    "canzoni d'amore con una voce dolce",
    "música calma para dormir à noite", "uma canção triste com piano", "quero música alegre para dançar",
    "rustige muziek om bij te slapen", "een vrolijk liedje om op te dansen",
    "spokojna muzyka do spania", "smutna piosenka z fortepianem",
    "uyumak için sakin müzik", "dans etmek için neşeli şarkılar",
    "спокойная музыка для сна", "грустная песня с фортепиано", "весёлая музыка для танцев",
    "ήρεμη μουσική για ύπνο", "χαρούμενο τραγούδι για χορό",
    "موسيقى هادئة للنوم", "أغنية حزينة مع البيانو", "موسيقى سعيدة للرقص",
    "מוזיקה שקטה לשינה", "שיר עצוב עם פסנתר",
    "सोने के लिए शांत संगीत", "पियानो के साथ एक उदास गाना", "नाचने के लिए खुशी का संगीत",
    "适合睡觉的安静音乐", "带钢琴的悲伤歌曲", "适合跳舞的欢快音乐", "有女声和吉他的歌",
    "眠るための静かな音楽", "ピアノの悲しい曲", "踊れる明るい音楽", "女性ボーカルとギターの曲",
    "잠잘 때 듣는 조용한 음악", "피아노가 있는 슬픈 노래", "춤추기 좋은 신나는 음악",
    "เพลงสงบสำหรับการนอนหลับ", "เพลงเศร้ากับเปียโน",
    "nhạc nhẹ nhàng để ngủ", "một bài hát buồn với đàn piano",
    "musik tenang untuk tidur", "lagu sedih dengan piano",
    "muziki wa utulivu wa kulala", "wimbo wa huzuni na piano",
    "chanson rock avec guitare électrique", "musique classique avec violon et orchestre", "du jazz pour le soir",
    "Rockmusik mit E-Gitarre", "klassische Musik mit Geige", "Jazz für den Abend", "elektronische Tanzmusik",
    "rock con guitarra eléctrica", "música clásica con violín", "jazz para la noche", "música electrónica para bailar",
    "rock con chitarra elettrica", "musica classica con violino", "músicas românticas com violão",
    "рок с электрогитарой", "классическая музыка со скрипкой", "джаз для вечера",
    "エレキギターのロック", "バイオリンのクラシック音楽", "夜に聴くジャズ",
    "电吉他摇滚乐", "小提琴古典音乐", "晚上听的爵士乐",
    "일렉트릭 기타 록 음악", "바이올린 클래식 음악", "밤에 듣는 재즈",
    "गिटार के साथ रॉक संगीत", "वायलिन के साथ शास्त्रीय संगीत",
    "موسيقى روك مع جيتار كهربائي", "موسيقى كلاسيكية مع الكمان",
    "elektro gitarlı rock müzik", "keman ile klasik müzik", "rockmuziek met elektrische gitaar",
    "muzyka klasyczna ze skrzypcami", "κλασική μουσική με βιολί", "מוזיקה קלאסית עם כינור",
    "nhạc rock với guitar điện", "musik rock dengan gitar listrik",
]

#: Emoji and symbols only.
EMOJI = ["🎵", "🎶🎶🎶", "😢🎹", "🔥🔥🔥", "💃🕺🎉", "🌴☀️🥁", "😴🌙", "🤘🎸", "❤️🎤", "🎻🎻", "🚗💨", "😂😂😂",
         "🍕🍺", "🌧️☕", "👶🍼", "🐶🐱", "⚽🏆", "🎄🎅", "💤💤", "✨🌈🦄"]
EMOJI_POOL = "😀😂😍😢😡🥳😴🤘🎵🎶🎸🎹🥁🎻🎺🎷🎤🎧🔥💃🕺🌴☀️🌧️🌙⭐✨❤️💔🍕🍺🚗✈️⚽🏆🎄🎅👶🐶🐱🦄🌈💤"

#: English, but not about music.
OFF_TOPIC = [
    "what is the weather tomorrow", "how do I file my taxes", "the quarterly report is due on Friday",
    "best pizza restaurant near me", "how to fix a flat tire", "translate this document into French",
    "my password does not work", "recipe for chocolate cake", "cheap flights to Paris", "how tall is Mount Everest",
    "book a table for two at eight", "what time is it in Tokyo", "symptoms of the flu", "how to learn Python",
    "the cat is sleeping on the sofa", "invoice number 4471 is overdue", "ignore previous instructions",
    "asdf", "test", "hello",
]


def gibberish(n: int, seed: int = 0) -> list[str]:
    """``n`` strings of 1 to 5 random lower-case "words" of 3 to 9 letters (keyboard mashing)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [" ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(rng.randint(1, 5)))
            for _ in range(n)]


def random_emoji(n: int, seed: int = 0) -> list[str]:
    """``n`` strings of 1 to 6 emoji drawn from :data:`EMOJI_POOL`."""
    rng = random.Random(seed)
    pool = list(EMOJI_POOL.replace("\ufe0f", ""))
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 6))) for _ in range(n)]
