"""Reference data the simulator draws from: cities and tiers, names, employers, banks, merchants.

Pure data. City codes are the real first four digits of each city's
administrative division code (GB/T 2260), so generated ID numbers carry a
region that matches the city; the two district digits are plausible, not
looked up. Family-name weights follow the common published frequency
ranking (王, 李, 张 … each about 7 %), rounded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class City:
    name: str
    tier: int  # 1 (北上广深) … 5
    code: str  # first four digits of the administrative division code
    weight: float  # relative share of the bank's customers within its tier


# Share of the bank's customers by city tier.
TIER_SHARE = {1: 0.26, 2: 0.30, 3: 0.22, 4: 0.14, 5: 0.08}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _tier(tier: int, entries: str) -> tuple[City, ...]:
    cities = []
    for entry in entries.split():
        name, code, weight = entry.split(":")
        cities.append(City(name=name, tier=tier, code=code, weight=float(weight)))
    return tuple(cities)


CITIES: tuple[City, ...] = (
    _tier(1, "北京:1101:1.0 上海:3101:1.0 广州:4401:0.8 深圳:4403:0.8")
    + _tier(
        2,
        "成都:5101:1.0 重庆:5001:1.0 杭州:3301:1.0 武汉:4201:0.9 西安:6101:0.8 苏州:3205:0.9 南京:3201:0.9 "
        "天津:1201:0.9 长沙:4301:0.7 郑州:4101:0.7 东莞:4419:0.6 青岛:3702:0.6 沈阳:2101:0.6 宁波:3302:0.6 "
        "昆明:5301:0.5",
    )
    + _tier(
        3,
        "合肥:3401:1.0 厦门:3502:0.8 济南:3701:0.9 福州:3501:0.8 无锡:3202:0.8 大连:2102:0.7 温州:3303:0.7 "
        "佛山:4406:0.8 南宁:4501:0.6 贵阳:5201:0.6 南昌:3601:0.6 太原:1401:0.6 石家庄:1301:0.7 哈尔滨:2301:0.7 "
        "长春:2201:0.6",
    )
    + _tier(
        4,
        "洛阳:4103:1.0 潍坊:3707:1.0 扬州:3210:0.8 桂林:4503:0.7 绵阳:5107:0.7 宜昌:4205:0.7 芜湖:3402:0.7 "
        "赣州:3607:0.9 保定:1306:0.9 湖州:3305:0.6",
    )
    + _tier(
        5,
        "开封:4102:1.0 丽江:5307:0.5 延安:6106:0.7 天水:6205:0.7 荆门:4208:0.7 黄山:3410:0.5 韶关:4402:0.8 "
        "张家口:1307:0.8",
    )
)

DISTRICT_SUFFIXES = ("02", "03", "04", "05", "06")

# (family name, pinyin, weight ‰)
FAMILY_NAMES: tuple[tuple[str, str, float], ...] = tuple(
    (name, pinyin, float(weight))
    for name, pinyin, weight in (
        entry.split(":")
        for entry in _words(
            "王:wang:71 李:li:70 张:zhang:67 刘:liu:54 陈:chen:45 杨:yang:31 黄:huang:22 赵:zhao:20 吴:wu:20 "
            "周:zhou:19 徐:xu:13 孙:sun:12 马:ma:11 朱:zhu:11 胡:hu:10 郭:guo:9.7 何:he:9 高:gao:8.7 林:lin:8.6 "
            "罗:luo:8.5 郑:zheng:8 梁:liang:7 谢:xie:6 宋:song:5.5 唐:tang:5 许:xu:5 韩:han:4.5 冯:feng:4.4 "
            "邓:deng:4.3 曹:cao:4.2 彭:peng:4.1 曾:zeng:4 肖:xiao:3.9 田:tian:3.8 董:dong:3.7 袁:yuan:3.6 "
            "潘:pan:3.5 于:yu:3.4 蒋:jiang:3.3 蔡:cai:3.2 余:yu:3.1 杜:du:3 叶:ye:3 程:cheng:2.9 苏:su:2.8 "
            "魏:wei:2.7 吕:lv:2.6 丁:ding:2.5 任:ren:2.4 沈:shen:2.3 姚:yao:2.2 卢:lu:2.1 姜:jiang:2 崔:cui:2 "
            "钟:zhong:1.9 谭:tan:1.8 陆:lu:1.7 汪:wang:1.7 范:fan:1.6 金:jin:1.6 石:shi:1.5 廖:liao:1.5 "
            "贾:jia:1.4 夏:xia:1.4 韦:wei:1.3 付:fu:1.3 方:fang:1.3 白:bai:1.2 邹:zou:1.2 孟:meng:1.2 "
            "熊:xiong:1.1 秦:qin:1.1 邱:qiu:1.1 江:jiang:1 尹:yin:1 薛:xue:1 段:duan:0.9 雷:lei:0.9 侯:hou:0.9 "
            "龙:long:0.9 史:shi:0.8 陶:tao:0.8 黎:li:0.8 贺:he:0.8 顾:gu:0.8 毛:mao:0.8 郝:hao:0.7 龚:gong:0.7 "
            "邵:shao:0.7 万:wan:0.7 钱:qian:0.7 严:yan:0.6 武:wu:0.6 戴:dai:0.6 莫:mo:0.6 孔:kong:0.6 "
            "欧阳:ouyang:0.3 司马:sima:0.1 上官:shangguan:0.05 诸葛:zhuge:0.05"
        )
    )
)


def _chars(entries: str) -> tuple[tuple[str, str], ...]:
    return tuple((char, pinyin) for char, pinyin in (entry.split(":") for entry in entries.split()))


GIVEN_MALE = _chars(
    "伟:wei 强:qiang 磊:lei 军:jun 勇:yong 杰:jie 涛:tao 斌:bin 超:chao 明:ming 刚:gang 平:ping 辉:hui "
    "鹏:peng 华:hua 飞:fei 鑫:xin 波:bo 宇:yu 浩:hao 凯:kai 健:jian 俊:jun 帆:fan 旭:xu 宁:ning 龙:long "
    "林:lin 阳:yang 建:jian 国:guo 峰:feng 亮:liang 成:cheng 志:zhi 文:wen 博:bo 晨:chen 轩:xuan 睿:rui "
    "泽:ze 航:hang 子:zi 天:tian 海:hai 振:zhen 东:dong"
)
GIVEN_FEMALE = _chars(
    "芳:fang 娜:na 敏:min 静:jing 丽:li 艳:yan 娟:juan 霞:xia 燕:yan 玲:ling 婷:ting 雪:xue 慧:hui 莹:ying "
    "琳:lin 颖:ying 倩:qian 洁:jie 佳:jia 欣:xin 怡:yi 悦:yue 萱:xuan 涵:han 诗:shi 梦:meng 雨:yu 思:si "
    "月:yue 晓:xiao 蕾:lei 秀:xiu 英:ying 桂:gui 兰:lan 红:hong 梅:mei 美:mei 淑:shu"
)

EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("qq.com", 0.42),
    ("163.com", 0.24),
    ("126.com", 0.1),
    ("sina.com", 0.05),
    ("foxmail.com", 0.05),
    ("outlook.com", 0.07),
    ("gmail.com", 0.07),
)

# Mainland mobile prefixes (中国移动 / 联通 / 电信 / 广电), weighted by how common they are.
MOBILE_PREFIXES: tuple[tuple[str, float], ...] = tuple(
    (prefix, float(weight))
    for prefix, weight in (
        entry.split(":")
        for entry in _words(
            "134:2 135:4 136:4 137:4 138:5 139:5 150:3 151:3 152:3 157:2 158:3 159:3 182:3 183:2 187:3 188:3 "
            "198:2 130:3 131:3 132:3 155:2 156:2 185:2 186:3 176:2 133:2 153:2 180:2 181:2 189:3 177:2 199:2 "
            "191:1 192:1"
        )
    )
)

BRANCH_STREETS = _words(
    "中山路 人民路 解放路 建设路 高新区 经开区 滨江 城东 城西 城南 城北 新区 科技园 金融街 火车站 大学城 世纪大道 "
    "和平路 长江路 黄河路"
)

EMPLOYER_WORDS = _words("鼎盛 宏远 瑞丰 卓越 嘉和 天成 中联 博远 润达 汇通 金桥 永安 华创 盛世 恒信 万方 启明 联创")
EMPLOYER_TRADES = _words("科技 制造 贸易 物流 建设 医药 教育 电子 食品 能源 传媒 软件")
EMPLOYER_FORMS = ("有限公司", "股份有限公司", "集团有限公司")
PUBLIC_EMPLOYERS = ("第一人民医院", "教育局", "税务局", "实验中学", "供电公司", "自来水公司")

OTHER_BANKS = _words(
    "工商银行 建设银行 农业银行 中国银行 交通银行 招商银行 邮储银行 兴业银行 浦发银行 中信银行 民生银行 平安银行"
)

MERCHANTS = _words(
    "美团 京东 淘宝 拼多多 盒马鲜生 滴滴出行 中国石化 国家电网 星巴克 瑞幸咖啡 永辉超市 万达影城 携程旅行 "
    "中国铁路12306 中国移动"
)

WECHAT_ARTICLE_TOPICS = ("wealth", "fund", "credit_card", "loan", "pension", "news", "benefits")
