process CFRNA_QC {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(counts, stageAs: 'counts/*'), path(align, stageAs: 'alignment/*'), path(trim, stageAs: 'trimmed/*')
    // meta: [id: cohort]; counts: *.counts.tsv{,.summary,.stats.json}; align: *.align.json, *.bam, *.bam.bai; trim: *.trim.json
    path samplesheet              // file: samplesheet (relative FASTQ paths resolve against its real folder)
    tuple val(meta2), path(gtf)   // reference annotation

    output:
    tuple val(meta), path("qc/qc_summary.tsv"), emit: summary
    tuple val(meta), path("qc/*.qc.json")     , emit: json
    tuple val(meta), path("qc/*")             , emit: files      // everything: + multiqc/, qc_thresholds.json
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions
    tuple val("${task.process}"), val('multiqc'), eval('python -c "import importlib.metadata as m; print(m.version(\'multiqc\'))"'), emit: versions_multiqc, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    mkdir -p counts alignment trimmed
    cfrna qc \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --gtf ${gtf} \\
        --counts-dir counts \\
        --align-dir alignment \\
        --trim-dir trimmed \\
        --outdir qc \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p qc/multiqc
    touch qc/qc_summary.tsv qc/stub.qc.json
    """
}
